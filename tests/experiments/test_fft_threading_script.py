"""benchmarks/xla_fft_threading.py: one real (tiny) run and its table.

The script is run by hand for the README; this checks that it runs
(all cores, then pinned to one), that its speed-ups are the one-core time
over the all-core time, and that bad sizes are refused. Never timings.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "xla_fft_threading.py")


def test_speed_ups_are_one_core_over_all_core_times(capsys, load_benchmark):
    script = load_benchmark("xla_fft_threading")
    results = {
        "all_cores": {
            "cores": 2,
            "times_s": {
                "fft of an input": 0.070,
                "fft after a fusion": 0.130,
                "fusion alone": 0.025,
            },
        },
        "one_core": {
            "cores": 1,
            "times_s": {
                "fft of an input": 0.105,
                "fft after a fusion": 0.130,
                "fusion alone": 0.030,
            },
        },
    }
    rows = script.rows_of(results)
    assert [row[0] for row in rows] == list(script.CASES)
    assert rows[0][1:] == pytest.approx((70.0, 105.0, 1.5))
    assert rows[1][3] == pytest.approx(1.0)
    script.print_table(results, markdown=True)
    table = capsys.readouterr().out.splitlines()
    assert table[0] == ("| case | 2 cores (ms) | 1 core (ms) | speed-up from 2 cores |")
    assert table[2] == "| fft of an input | 70.0 | 105.0 | 1.50x |"


def test_a_tiny_run_times_every_case_on_all_cores_and_on_one(tmp_path, load_benchmark):
    pytest.importorskip("tensorflow")
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "--rows",
            "8",
            "--fft-length",
            "64",
            "--repeats",
            "1",
            "--warmup",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["one_core"]["cores"] == 1
    assert results["all_cores"]["cores"] == len(os.sched_getaffinity(0))
    for key in ("all_cores", "one_core"):
        times = results[key]["times_s"]
        assert set(times) == set(load_benchmark("xla_fft_threading").CASES)
        assert all(value > 0 for value in times.values())
    assert "fft after a fusion" in proc.stdout


def test_bad_sizes_are_refused():
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--fft-length", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "--fft-length >= 2" in proc.stderr
