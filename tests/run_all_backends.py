"""Runs the whole test suite: layer tests on every Keras backend, experiments on TensorFlow.

Keras fixes its backend when it is first imported, so each backend gets its own
pytest process. Usage (from the repository root):

        python tests/run_all_backends.py            # everything
        python tests/run_all_backends.py --backends jax --only layers
        python tests/run_all_backends.py --jobs 1    # one pytest process at a time

The last line is the total over all runs, e.g. ``total: 412 passed, 0 failed, 3 skipped``.
The exit code is non-zero if any run failed or collected no tests.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (suite folder, backends it runs on). Experiments use tf.data, tf.distribute and
# SavedModel, so they are TensorFlow-only by design.
SUITES = (
    ("layers", ("tensorflow", "jax", "torch")),
    ("experiments", ("tensorflow",)),
)

_COUNT = re.compile(r"(\d+) (passed|failed|skipped|error|errors|xfailed|xpassed)")


def _summary_counts(output):
    """Parses pytest's final summary line into {"passed": n, ...}."""
    counts = {}
    for line in reversed(output.splitlines()):
        found = _COUNT.findall(line)
        if found and (" in " in line or "passed" in line or "failed" in line):
            for number, kind in found:
                kind = "error" if kind == "errors" else kind
                counts[kind] = counts.get(kind, 0) + int(number)
            break
    return counts


def _runs(args):
    """(suite, backend) pairs to run, the longest first (see `_EXPECTED_SECONDS`)."""
    runs = [
        (suite, backend)
        for suite, backends in SUITES
        if not args.only or suite in args.only
        for backend in backends
        if not args.backends or backend in args.backends
    ]
    return sorted(runs, key=lambda run: -_EXPECTED_SECONDS.get(run, 0))


# Rough wall times on 2 cores: the two long runs start first, so with --jobs 2 the short
# ones fill in after them instead of leaving one long run alone at the end.
_EXPECTED_SECONDS = {
    ("layers", "jax"): 700,
    ("experiments", "tensorflow"): 700,
    ("layers", "tensorflow"): 120,
    ("layers", "torch"): 100,
}


def _start(suite, backend, pytest_args, log):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        os.path.join("tests", suite),
        *pytest_args,
    ]
    print(f"=== {suite} on {backend}: started: {' '.join(command)}", flush=True)
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=log, stderr=log)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*", default=None)
    parser.add_argument("--only", nargs="*", default=None, help="suite folders to run")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="pytest processes at once (default 2: JAX's compiles and the experiments' "
        "subprocesses leave a second core idle)",
    )
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    totals = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    bad_runs = []
    pending = _runs(args)
    running = []  # (suite, backend, process, log file, start time)
    while pending or running:
        while pending and len(running) < args.jobs:
            suite, backend = pending.pop(0)
            log = tempfile.TemporaryFile(mode="w+")
            process = _start(suite, backend, args.pytest_args, log)
            running.append((suite, backend, process, log, time.time()))
        time.sleep(1)
        for run in [run for run in running if run[2].poll() is not None]:
            running.remove(run)
            suite, backend, process, log, start = run
            log.seek(0)
            output = log.read()
            log.close()
            # Each run's whole output at once, so that parallel runs do not interleave.
            print(f"=== {suite} on {backend}: output", flush=True)
            print(output, flush=True)
            counts = _summary_counts(output)
            print(
                f"=== {suite} on {backend}: exit {process.returncode}, {counts}, "
                f"{time.time() - start:.0f} s",
                flush=True,
            )
            for kind in totals:
                totals[kind] += counts.get(kind, 0)
            # pytest exit code 5 means "no tests collected": that is a failure here.
            if process.returncode != 0:
                bad_runs.append(f"{suite}/{backend} (exit {process.returncode})")

    if bad_runs:
        print("failed runs: " + ", ".join(bad_runs))
    failed = totals["failed"] + totals["error"]
    print(f"total: {totals['passed']} passed, {failed} failed, {totals['skipped']} skipped")
    return 1 if bad_runs or totals["passed"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
