"""experiments.stream: an exported model scans a recording as a stream."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import leaf_keras
from experiments import export as export_lib
from experiments import stream as stream_lib
from experiments.data import synthetic_commands

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSES = ["a", "b", "c"]


def test_detections_are_runs_of_one_top_class():
    scores = np.array(
        [[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.2, 0.7, 0.1], [0.4, 0.3, 0.3], [0.1, 0.1, 0.8]]
    )
    centers = np.arange(5) * 0.1
    found = stream_lib.detections(scores, centers, 0.5, CLASSES)
    assert found == [
        {"time_s": 0.05, "class": "a", "score": 0.9, "hops": 2},
        {"time_s": 0.2, "class": "b", "score": 0.7, "hops": 1},
        {"time_s": 0.4, "class": "c", "score": 0.8, "hops": 1},
    ]
    # Sigmoid outputs: classes are independent.
    both = stream_lib.detections(np.array([[0.9, 0.6, 0.0]]), [1.0], 0.5, CLASSES, True)
    assert [item["class"] for item in both] == ["a", "b"]
    with pytest.raises(ValueError, match="3 classes"):
        stream_lib.detections(np.zeros((2, 4)), [0, 1], 0.5, CLASSES)


@pytest.fixture(scope="module")
def exported_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("stream_workdir"))
    model = leaf_keras.AudioClassifier(
        num_outputs=3, frontend=leaf_keras.Leaf(n_filters=8), encoder=leaf_keras.ConvNet([4, 4])
    )
    model.build((None, 8000))
    export_lib.export(
        model,
        workdir,
        multi_label=False,
        tflite=False,
        extra_info={"class_names": CLASSES, "sample_rate": 16000},
        preprocessing={"min_length": 8000, "loudness_normalize": True},
    )
    return workdir


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "experiments.stream", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, KERAS_BACKEND="tensorflow"),
        check=False,
    )


def test_cli_scans_a_recording(exported_workdir, write_wav, tmp_path):
    samples, _ = synthetic_commands.synthesize_recording([0, 1], np.random.default_rng(0))
    audio = str(tmp_path / "recording.wav")
    write_wav(audio, samples)
    result = stream_lib.scan(exported_workdir, audio, hop_ms=100.0)
    hops = -(-len(samples) // 1600) + 1  # whole hops, then one for the look-ahead
    assert result["scores"].shape == (hops, 3)
    np.testing.assert_allclose(result["scores"].sum(axis=1), 1.0, rtol=1e-5)
    assert result["window_seconds"] == 0.5 and result["latency_ms"] == pytest.approx(20.0625)
    assert result["real_time_factor"] > 0
    # The window of the last hop ends at the last frame the stream emitted.
    assert result["window_centers"][-1] == pytest.approx(
        ((hops * 1600 - 321) // 160) * 160 / 16000 - 0.25
    )

    done = _run(f"--workdir={exported_workdir}", f"--audio={audio}", "--threshold=0.0")
    assert done.returncode == 0, done.stderr
    assert "real-time factor" in done.stdout and "latency: 20.06 ms" in done.stdout
    with open(os.path.join(exported_workdir, "stream", "recording.csv")) as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {"time_s", "class", "score", "hops"}
    assert sum(int(row["hops"]) for row in rows) == hops  # threshold 0: every hop


def test_cli_refuses_bad_input(exported_workdir, write_wav, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEnot audio")
    done = _run(f"--workdir={exported_workdir}", f"--audio={broken}")
    assert done.returncode != 0 and "broken.wav" in done.stderr
    audio = str(tmp_path / "short.wav")
    write_wav(audio, np.zeros(4000, np.int16))
    done = _run(f"--workdir={exported_workdir}", f"--audio={audio}", "--hop_ms=15")
    assert done.returncode != 0 and "multiple of the frontend's stride" in done.stderr
    done = _run(f"--workdir={tmp_path}", f"--audio={audio}")
    assert done.returncode != 0 and "export_info.json" in done.stderr


def test_other_sample_rates_are_resampled(exported_workdir, write_wav, tmp_path):
    audio = str(tmp_path / "at_8k.wav")
    write_wav(audio, np.zeros(8000, np.int16), sample_rate=8000)
    result = stream_lib.scan(exported_workdir, audio, hop_ms=100.0)
    assert result["audio_seconds"] == pytest.approx(1.0)
