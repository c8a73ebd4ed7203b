"""Runs the whole test suite: layer tests on every Keras backend, experiments on TensorFlow.

Keras fixes its backend when it is first imported, so each backend gets its own
pytest process. Usage (from the repository root):

        python tests/run_all_backends.py            # everything
        python tests/run_all_backends.py --backends jax --only layers

The last line is the total over all runs, e.g. ``total: 412 passed, 0 failed, 3 skipped``.
The exit code is non-zero if any run failed or collected no tests.
"""

import argparse
import os
import re
import subprocess
import sys
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*", default=None)
    parser.add_argument("--only", nargs="*", default=None, help="suite folders to run")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest")
    args = parser.parse_args()

    totals = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    bad_runs = []
    for suite, backends in SUITES:
        if args.only and suite not in args.only:
            continue
        for backend in backends:
            if args.backends and backend not in args.backends:
                continue
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
            command = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                os.path.join("tests", suite),
                *args.pytest_args,
            ]
            print(f"=== {suite} on {backend}: {' '.join(command)}", flush=True)
            start = time.time()
            process = subprocess.run(
                command,
                cwd=ROOT,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            print(process.stdout, flush=True)
            counts = _summary_counts(process.stdout)
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
