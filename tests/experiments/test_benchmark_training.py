"""benchmarks/benchmark_training.py: one real (tiny) run of the training benchmark.

The benchmark is run by hand for the README; this only checks that it runs through the
trainer's code path and prints a well-formed table of positive figures, never timings.
"""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "benchmark_training.py")
NUMBER = re.compile(r"^\d+(\.\d+)?$")


def _cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_a_tiny_tensorflow_run_prints_a_table_of_positive_figures(tmp_path):
    pytest.importorskip("tensorflow")
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "--backend",
            "tensorflow",
            "--frontends",
            "mel",
            "fast",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "1",
            # 5 clips per class: 3 train, 1 validation, 1 test → 30 training clips.
            "--files-per-class",
            "5",
            "--batch-size",
            "6",
            "--pipeline-batches",
            "5",
            "--epoch-examples",
            "1000",
            "--work-dir",
            str(tmp_path / "work"),
            "--json",
            str(out),
            "--markdown",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(tmp_path)),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    header = _cells(lines[0])
    assert header[:3] == ["backend", "compile", "frontend"]
    assert "step ms (batch 6)" in header
    assert "epoch of 1000 examples (s)" in header
    assert set(_cells(lines[1])) == {"---"}
    rows = [_cells(line) for line in lines if line.startswith("| tensorflow")]
    assert [row[2] for row in rows] == ["mel (gin/mel.gin)", "LEAF fast (band_limited)"]
    for row in rows:
        assert len(row) == len(header)
        # Keras's "auto": XLA with a GPU, a tf.function graph on a CPU-only machine.
        assert row[1] in ("XLA", "graph")
        figures = row[3:-1]
        assert all(NUMBER.match(cell) and float(cell) > 0 for cell in figures), row
        assert row[-1] in ("training step", "input pipeline")
    # The pipeline table: its two variants, positive.
    pipeline = [_cells(line) for line in lines if line.startswith(("| as configured", "| one "))]
    assert len(pipeline) == 2
    assert all(float(row[1]) > 0 for row in pipeline)
    assert "files/s" in proc.stdout
    # Rows go to stdout only; stderr has progress, one "done:" per frontend.
    assert not [line for line in proc.stderr.splitlines() if line.startswith("|")]
    assert proc.stderr.count("done: ") == 2

    results = json.loads(out.read_text())
    assert results["pipeline"]["files"] == 50
    assert results["pipeline"]["train_examples"] == 30
    for result in results["results"]:
        # One timed window per repeat, each of a positive duration.
        for key in ("e2e_windows_s", "step_windows_s"):
            assert len(result[key]) == 1 and result[key][0] > 0, (key, result)
        assert result["params"] > 0
