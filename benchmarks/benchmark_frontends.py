"""Forward+backward speed and peak memory of the leaf_keras frontends.

Every (backend, frontend, batch configuration) runs in a fresh subprocess with
KERAS_BACKEND set, so that the backend is chosen before Keras is imported and
the peak resident memory (`resource.getrusage(...).ru_maxrss`) belongs to that
configuration alone. In each subprocess one training-like step is compiled:

- tensorflow: `tf.function(jit_compile=True)` (XLA) around a GradientTape
  (`--tf-compile graph` for a plain tf.function graph);
- jax: `jax.jit(jax.value_and_grad(...))` over `stateless_call`;
- torch: eager autograd (no torch.compile).

The step computes `loss = sum(frontend(x) * c)` for a fixed random c and its
gradient with respect to the frontend's trainable weights (and to the input x
for frontends without weights, e.g. MelFilterbanks). Warm-up runs (including
compilation) are excluded; the reported time is the median of `--repeats`
runs of the step, with the result fetched to the host.

Usage:
    python benchmarks/benchmark_frontends.py --backends tensorflow jax \
        --repeats 5 --batch-configs 64x1 8x10 --markdown
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_RATE = 16000
FRONTENDS = ("leaf", "leaf_band_limited", "mel", "mel_pcen", "tfbanks",
             "sincnet", "sincnet_plus")


def build_frontend(name):
    """Builds a frontend with its default (paper) arguments."""
    import keras  # pylint: disable=g-import-not-at-top
    from leaf_keras import frontend  # pylint: disable=g-import-not-at-top
    if name == "leaf":
        return frontend.Leaf()
    if name == "leaf_band_limited":
        from leaf_keras import band_limited  # pylint: disable=g-import-not-at-top
        try:
            return frontend.Leaf(band_limited=True)
        except TypeError:
            # Until Leaf takes the option: the same stages by hand.
            return keras.Sequential([
                band_limited.BandLimitedGaborPooling(),
                frontend.EnergyFloor(1e-5),
                frontend.default_leaf_pcen(),
            ], name="leaf_band_limited")
    return {
        "mel": frontend.MelFilterbanks,
        "mel_pcen": frontend.MelPCEN,
        "tfbanks": frontend.TimeDomainFilterbanks,
        "sincnet": frontend.SincNet,
        "sincnet_plus": frontend.SincNetPlus,
    }[name]()


def _peak_rss_mb():
    import resource  # pylint: disable=g-import-not-at-top
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _make_step(model, backend, x, cotangent, tf_compile):
    """Returns a zero-argument function running forward+backward once."""
    import keras  # pylint: disable=g-import-not-at-top
    wrt_input = not model.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        x_t, c_t = tf.constant(x), tf.constant(cotangent)

        def step(inputs, cot):
            with tf.GradientTape() as tape:
                if wrt_input:
                    tape.watch(inputs)
                loss = tf.reduce_sum(model(inputs) * cot)
            sources = [inputs] if wrt_input else model.trainable_variables
            return loss, tape.gradient(loss, sources)

        fn = tf.function(step, jit_compile=(tf_compile == "xla"))
        return lambda: [t.numpy() for t in tf.nest.flatten(fn(x_t, c_t))]
    if backend == "jax":
        import jax  # pylint: disable=g-import-not-at-top
        trainable = [v.value for v in model.trainable_variables]
        fixed = [v.value for v in model.non_trainable_variables]
        x_j, c_j = jax.numpy.asarray(x), jax.numpy.asarray(cotangent)

        def loss_fn(values, inputs):
            out = model.stateless_call(values, fixed, inputs)[0]
            return jax.numpy.sum(out * c_j)

        grad_fn = jax.jit(jax.value_and_grad(loss_fn,
                                             argnums=1 if wrt_input else 0))
        return lambda: jax.block_until_ready(grad_fn(trainable, x_j))
    if backend == "torch":
        import torch  # pylint: disable=g-import-not-at-top
        c_t = torch.as_tensor(cotangent)

        def run():
            x_t = torch.as_tensor(x).requires_grad_(wrt_input)
            for variable in model.trainable_variables:
                variable.value.grad = None
            loss = torch.sum(model(x_t) * c_t)
            loss.backward()
            return float(loss)
        return run
    raise ValueError(f"unknown backend {backend!r}")


def run_worker(args):
    """Measures one configuration in this process; prints one JSON line."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    import keras  # pylint: disable=g-import-not-at-top
    backend = keras.backend.backend()
    batch, seconds = args.config
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((batch, int(seconds * SAMPLE_RATE)))
         ).astype("float32")
    model = build_frontend(args.frontend)
    out_shape = model.compute_output_shape(x.shape)
    model.build(x.shape)
    cotangent = rng.standard_normal(
        (batch,) + tuple(out_shape[1:])).astype("float32")
    baseline = _peak_rss_mb()
    step = _make_step(model, backend, x, cotangent, args.tf_compile)
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print("RESULT " + json.dumps({
        "backend": backend, "frontend": args.frontend,
        "batch": batch, "seconds": seconds,
        "time_s": median, "times": times,
        "audio_s_per_s": batch * seconds / median,
        "peak_mb": _peak_rss_mb(), "baseline_mb": baseline,
        "compile": {"tensorflow": f"tf.function({args.tf_compile})",
                    "jax": "jax.jit", "torch": "eager"}[backend],
    }))


def _parse_config(text):
    batch, seconds = text.lower().split("x")
    return int(batch), float(seconds)


def run_all(args):
    results = []
    for backend in args.backends:
        for config in args.batch_configs:
            for name in args.frontends:
                command = [sys.executable, os.path.abspath(__file__), "--worker",
                           "--frontend", name, "--config",
                           f"{config[0]}x{config[1]:g}",
                           "--repeats", str(args.repeats), "--warmup",
                           str(args.warmup), "--tf-compile", args.tf_compile]
                env = dict(os.environ, KERAS_BACKEND=backend,
                           TF_CPP_MIN_LOG_LEVEL="3",
                           PYTHONPATH=ROOT + os.pathsep
                           + os.environ.get("PYTHONPATH", ""))
                proc = subprocess.run(command, env=env, capture_output=True,
                                      text=True, timeout=args.timeout,
                                      check=False)
                lines = [l for l in proc.stdout.splitlines()
                         if l.startswith("RESULT ")]
                if proc.returncode or not lines:
                    error = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    result = {"backend": backend, "frontend": name,
                              "batch": config[0], "seconds": config[1],
                              "error": error[:200]}
                else:
                    result = json.loads(lines[-1][len("RESULT "):])
                results.append(result)
                print(_row(result, None), file=sys.stderr, flush=True)
    return results


def _row(result, mel_time):
    config = f"{result['batch']} x {result['seconds']:g} s"
    if "error" in result:
        return (f"| {result['backend']} | {result['frontend']} | {config} | "
                f"failed: {result['error']} | | | |")
    ratio = (f"{result['time_s'] / mel_time:.1f}" if mel_time else "-")
    return (f"| {result['backend']} | {result['frontend']} | {config} | "
            f"{result['time_s']:.3f} | {result['audio_s_per_s']:.0f} | "
            f"{result['peak_mb']:.0f} ({result['peak_mb'] - result['baseline_mb']:.0f}) | "
            f"{ratio} |")


def print_table(results, markdown):
    mel = {(r["backend"], r["batch"], r["seconds"]): r["time_s"]
           for r in results if r["frontend"] == "mel" and "error" not in r}
    header = ("| backend | frontend | batch | s / batch (fwd+bwd) | "
              "audio s / s | peak RSS MB (growth in step) | × mel time |")
    lines = [header, "|" + "---|" * 7] if markdown else [header]
    for r in results:
        lines.append(_row(r, mel.get((r["backend"], r["batch"],
                                      r["seconds"]))))
    if not markdown:
        lines = [l.strip("|").replace(" | ", "\t") for l in lines]
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+",
                        default=["tensorflow", "jax"],
                        choices=["tensorflow", "jax", "torch"])
    parser.add_argument("--frontends", nargs="+", default=list(FRONTENDS),
                        choices=FRONTENDS)
    parser.add_argument("--batch-configs", nargs="+", type=_parse_config,
                        default=[(64, 1.0), (8, 10.0)],
                        help="BATCHxSECONDS, e.g. 64x1 8x10")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tf-compile", choices=["xla", "graph"], default="xla")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--markdown", action="store_true",
                        help="print a README-ready markdown table")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--worker", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--frontend", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=_parse_config, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    results = run_all(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print_table(results, args.markdown)


if __name__ == "__main__":
    main()
