"""Streaming step time per hop and real-time factor of the frontends, on one core.

A keyword spotter calls `stream.step` once per hop (10 ms, or 100 ms when it can wait):
what matters is the time of one step for a batch of one stream, on the one core a phone
or a server slot gives it. Each (backend, frontend, chunk) runs in a fresh process pinned
to one core (`os.sched_setaffinity` before any backend is imported, and one thread asked
of each backend). The step is compiled (`tf.function(jit_compile=True)`, `jax.jit`;
PyTorch runs eagerly), warmed up past the stream's warm-up (its state grows until the
first frame, then keeps one shape; the band-limited engine's cycles with its blocks: the
warm-up runs until no new shape has come for 64 steps), then timed over `--steps` steps.

Columns: the median and mean ms per step, the real-time factor (mean step time / chunk
duration; below 1 keeps up with the stream) and the frontend's latency. The band-limited
engine computes a whole block in one step of 28 (10 ms chunks): its median step is the cheap
one, its mean the cost per hop.

Usage:
    python benchmarks/benchmark_streaming.py --backends tensorflow jax torch \\
        --frontends leaf mel_pcen --chunk-ms 10 100 --markdown
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The frontends by benchmark name (no backend is imported until one is built).
from benchmark_frontends import build_frontend  # noqa: E402  pylint: disable=wrong-import-position

SAMPLE_RATE = 16000
FRONTENDS = (
    "leaf",
    "leaf_exact",
    "leaf_layers",
    "leaf_band_limited",
    "mel",
    "mel_pcen",
    "tfbanks",
    "sincnet",
    "sincnet_plus",
)


def _sync(frames, backend):
    if backend == "jax":
        frames.block_until_ready()
    elif backend == "torch":
        frames.cpu()
    else:
        frames.numpy()


def run_worker(args):
    """One configuration, in this (pinned) process; prints a JSON line."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    backend = args.backend
    if backend == "torch":
        import torch  # pylint: disable=import-outside-toplevel

        torch.set_num_threads(1)
    import numpy as np  # pylint: disable=import-outside-toplevel

    from experiments.stream import compiled_step  # pylint: disable=import-outside-toplevel
    from experiments.stream import state_shapes  # pylint: disable=import-outside-toplevel
    from leaf_keras import streaming  # pylint: disable=import-outside-toplevel

    stream = streaming.stream(build_frontend(args.frontend))
    chunk = int(round(args.chunk_ms * SAMPLE_RATE / 1000))
    chunk -= chunk % stream.stride
    step = compiled_step(stream.step)
    rng = np.random.default_rng(0)
    state = stream.initial_state(1)
    # Warm-up: until every state shape has been compiled, i.e. past the stream's growing
    # buffers and, for the band-limited engine, whose shapes cycle with its blocks, until
    # no new shape has come for 64 steps; then a few steady steps.
    shapes, unchanged = set(), 0
    while unchanged < 64:
        frames, state = step((0.1 * rng.standard_normal((1, chunk))).astype("float32"), state)
        shape = state_shapes(state)
        unchanged = unchanged + 1 if shape in shapes else 0
        shapes.add(shape)
    for _ in range(args.warmup):
        frames, state = step((0.1 * rng.standard_normal((1, chunk))).astype("float32"), state)
    _sync(frames, backend)
    times, emitted = [], 0
    for _ in range(args.steps):
        audio = (0.1 * rng.standard_normal((1, chunk))).astype("float32")
        start = time.perf_counter()
        frames, state = step(audio, state)
        _sync(frames, backend)
        times.append(time.perf_counter() - start)
        emitted += int(frames.shape[1])
    median, mean = float(np.median(times)), float(np.mean(times))
    print(
        "RESULT "
        + json.dumps(
            {
                "backend": backend,
                "frontend": args.frontend,
                "chunk_ms": 1000 * chunk / SAMPLE_RATE,
                "frames_per_step": emitted / args.steps,
                "step_ms": 1000 * median,
                "mean_step_ms": 1000 * mean,
                "real_time_factor": mean / (chunk / SAMPLE_RATE),
                "latency_samples": stream.latency,
            }
        ),
        flush=True,
    )


def run_all(args):
    results = []
    for backend in args.backends:
        for frontend in args.frontends:
            for chunk_ms in args.chunk_ms:
                command = [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--worker",
                    f"--backend={backend}",
                    f"--frontend={frontend}",
                    f"--chunk-ms={chunk_ms}",
                    f"--steps={args.steps}",
                    f"--warmup={args.warmup}",
                ]
                env = dict(
                    os.environ,
                    KERAS_BACKEND=backend,
                    TF_CPP_MIN_LOG_LEVEL="3",
                    OMP_NUM_THREADS="1",
                    TF_NUM_INTRAOP_THREADS="1",
                    TF_NUM_INTEROP_THREADS="1",
                    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
                    PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                )
                process = subprocess.run(
                    command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800
                )
                lines = [l for l in process.stdout.splitlines() if l.startswith("RESULT ")]
                if process.returncode or not lines:
                    print(f"{backend}/{frontend}/{chunk_ms} ms failed:\n{process.stderr[-3000:]}")
                    continue
                result = json.loads(lines[-1][len("RESULT ") :])
                print(json.dumps(result), flush=True)
                results.append(result)
    return results


def print_table(results, markdown):
    header = (
        "| backend | frontend | chunk | frames / step | median ms / step (1 core) | "
        "mean ms / step | real-time factor | latency |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|"] if markdown else [header]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['frontend']} | {r['chunk_ms']:.0f} ms | "
            f"{r['frames_per_step']:g} | {r['step_ms']:.2f} | {r['mean_step_ms']:.2f} | "
            f"{r['real_time_factor']:.3f} | "
            f"{r['latency_samples']} samples ({1000 * r['latency_samples'] / SAMPLE_RATE:.1f} ms) |"
        )
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--frontends", nargs="+", default=["leaf", "mel_pcen"], choices=FRONTENDS)
    parser.add_argument("--chunk-ms", nargs="+", type=float, default=[10.0, 100.0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--frontend", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.chunk_ms = args.chunk_ms[0] if isinstance(args.chunk_ms, list) else args.chunk_ms
        run_worker(args)
        return
    results = run_all(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print_table(results, args.markdown)


if __name__ == "__main__":
    main()
