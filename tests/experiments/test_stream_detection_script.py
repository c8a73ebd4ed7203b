"""benchmarks/stream_detection.py: matching detections with events, and a run end to end
(its figures are for the README and the issues, never checked here)."""

import json
import os
import subprocess
import sys

import pytest

import leaf_keras
from experiments import export as export_lib
from experiments.data import synthetic_commands

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import stream_detection  # noqa: E402  pylint: disable=wrong-import-position

NAMES = synthetic_commands.CLASS_NAMES


def _found(time_s, label):
    return {"time_s": time_s, "class": NAMES[label], "score": 0.9, "hops": 5}


def test_each_event_takes_the_nearest_detection_of_its_class():
    events = [(1.0, 0), (2.5, 1), (4.0, 0)]
    found = [_found(1.3, 0), _found(0.95, 0), _found(2.5, 2), _found(4.6, 0), _found(7.0, 3)]
    pairs, spurious = stream_detection.match(found, events, NAMES)
    assert [(centre, name, d and d["time_s"]) for centre, name, d in pairs] == [
        (1.0, NAMES[0], 0.95),
        (2.5, NAMES[1], None),  # only another class near it
        (4.0, NAMES[0], None),  # 0.6 s away: not this event's
    ]
    assert sorted(d["time_s"] for d in spurious) == [1.3, 2.5, 4.6, 7.0]


def test_recordings_have_eight_different_classes():
    labels, _ = stream_detection.recording_labels(3)
    assert len(labels) == 8 == len(set(labels))
    assert labels != stream_detection.recording_labels(4)[0]


@pytest.fixture(scope="module")
def ten_class_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("detection_workdir"))
    # The exact engine: its stream's state keeps one shape once the first frame is out, so
    # the scan compiles its step a few times rather than once per hop of the band-limited
    # blocks (~30 compilations, two minutes here), which this test of the script need not pay.
    model = leaf_keras.AudioClassifier(
        num_outputs=10,
        frontend=leaf_keras.Leaf(n_filters=8, filterbank="fused"),
        encoder=leaf_keras.ConvNet([4]),
    )
    model.build((None, 16000))
    export_lib.export(
        model,
        workdir,
        multi_label=False,
        tflite=False,
        extra_info={"class_names": list(NAMES), "sample_rate": 16000},
        preprocessing={"min_length": 16000, "loudness_normalize": True},
    )
    return workdir


def test_the_script_reports_every_seed(ten_class_workdir, tmp_path):
    out = tmp_path / "rows.json"
    process = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "benchmarks", "stream_detection.py"),
            f"--workdir={ten_class_workdir}",
            "--seeds",
            "0",
            "--hop-ms=200",
            "--markdown",
            f"--json={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, KERAS_BACKEND="tensorflow"),
        check=False,
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["seed"] == 0 and row["events"] == 8
    assert row["detected"] + len(row["missed"]) == 8
    assert 0 <= row["within_tolerance"] <= row["detected"] == len(row["errors_ms"])
    assert row["real_time_factor"] > 0 and row["steady_real_time_factor"] > 0
    assert 1 <= row["state_shapes"] < 10
    table = process.stdout.strip().splitlines()
    assert table[0].startswith("| seed | detected | within 100 ms |")
    assert [line.split(" | ")[0] for line in table[2:]] == ["| 0", "| all"]
