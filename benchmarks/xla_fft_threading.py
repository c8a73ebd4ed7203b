"""Whether XLA:CPU runs an FFT on all cores: alone, and after a fusion.

XLA:CPU (TensorFlow 2.21) computes an FFT with DUCC, handing it the
intra-op thread pool. DUCC's adapter for that pool runs single-threaded when
it is called from one of the pool's own threads (it cannot wait on its own
pool), and XLA's thunk executor runs a thunk on a pool thread once an
earlier thunk has completed there. So an FFT that is the first operation of
a compiled program uses every core, and the same FFT after an elementwise
fusion uses one. In LEAF's exact path every large FFT follows a fusion (the
spectral product before the forward transform, the cotangent before the
backward one).

This script shows it with public tools only. Each case is one compiled
`tf.function(jit_compile=True)`, timed (median of `--repeats` runs after
warm-up) in a fresh process on all the cores the process may use, and again
in a process pinned to one core (`os.sched_setaffinity` before TensorFlow is
imported). An operation that uses several cores gets faster with them; one
that runs on a single thread does not.

Cases, on a complex64 tensor `[rows, fft_length]` (default `[15360, 3200]`,
the forward FFT of exact LEAF at 64 x 1 s: 40 filters x 384 blocks):
- `fft of an input`: `fft(c)[..., :8]`, c a program input.
- `fft after a fusion`: `fft(c * s)[..., :8]`, s a scalar input; the
  product is a fusion that writes the FFT's input.
- `fusion alone`: `sum(real(c * s))`, for scale.

Usage:
    python benchmarks/xla_fft_threading.py --repeats 7 --markdown
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = ("fft of an input", "fft after a fusion", "fusion alone")


def run_worker(args):
    """Times every case in this process; prints one JSON line."""
    if args.one_core:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(0)
    shape = (args.rows, args.fft_length)
    signal = tf.constant(
        (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    )
    scale = tf.constant(np.complex64(0.5))
    functions = {
        "fft of an input": lambda c, s: tf.signal.fft(c)[:, :8],
        "fft after a fusion": lambda c, s: tf.signal.fft(c * s)[:, :8],
        "fusion alone": lambda c, s: tf.reduce_sum(tf.math.real(c * s)),
    }
    times = {}
    for name in CASES:
        step = tf.function(functions[name], jit_compile=True)
        for _ in range(args.warmup):
            step(signal, scale).numpy()
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            step(signal, scale).numpy()
            runs.append(time.perf_counter() - start)
        times[name] = statistics.median(runs)
    print(
        json.dumps(
            {"cores": len(os.sched_getaffinity(0)), "tensorflow": tf.__version__, "times_s": times}
        )
    )


def measure(args):
    """Runs the worker on all cores and on one; returns both results."""
    results = {}
    for one_core in (False, True):
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            "--rows",
            str(args.rows),
            "--fft-length",
            str(args.fft_length),
            "--repeats",
            str(args.repeats),
            "--warmup",
            str(args.warmup),
        ]
        if one_core:
            command.append("--one-core")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, check=False, timeout=args.timeout
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"The {'one-core' if one_core else 'all-core'} worker "
                f"failed with exit code {done.returncode}:\n"
                f"{done.stderr[-3000:]}"
            )
        results["one_core" if one_core else "all_cores"] = json.loads(
            done.stdout.strip().splitlines()[-1]
        )
    return results


def rows_of(results):
    """`(case, all-core ms, one-core ms, speed-up)` for each case."""
    rows = []
    for name in CASES:
        many = results["all_cores"]["times_s"][name]
        one = results["one_core"]["times_s"][name]
        rows.append((name, 1e3 * many, 1e3 * one, one / many))
    return rows


def print_table(results, markdown):
    cores = results["all_cores"]["cores"]
    header = ("case", f"{cores} cores (ms)", "1 core (ms)", f"speed-up from {cores} cores")
    lines = [
        [name, f"{many:.1f}", f"{one:.1f}", f"{gain:.2f}x"]
        for name, many, one, gain in rows_of(results)
    ]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(row[i]) for row in [header] + lines) for i in range(len(header))]
        for row in [header] + lines:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", type=int, default=15360, help="transforms per FFT (default: 40 x 384)"
    )
    parser.add_argument("--fft-length", type=int, default=3200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one-core", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rows < 1 or args.fft_length < 2 or args.repeats < 1:
        parser.error("--rows and --repeats must be >= 1, --fft-length >= 2.")
    if args.worker:
        run_worker(args)
        return
    results = measure(args)
    print_table(results, args.markdown)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
