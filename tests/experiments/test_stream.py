"""experiments.stream: an exported model scans a recording as a stream."""

import csv
import os
import re
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
        {"time_s": 0.05, "start_s": 0.0, "end_s": 0.1, "class": "a", "score": 0.9, "hops": 2},
        {"time_s": 0.2, "start_s": 0.2, "end_s": 0.2, "class": "b", "score": 0.7, "hops": 1},
        {"time_s": 0.4, "start_s": 0.4, "end_s": 0.4, "class": "c", "score": 0.8, "hops": 1},
    ]
    # Sigmoid outputs: classes are independent.
    both = stream_lib.detections(np.array([[0.9, 0.6, 0.0]]), [1.0], 0.5, CLASSES, True)
    assert [item["class"] for item in both] == ["a", "b"]
    with pytest.raises(ValueError, match="3 classes"):
        stream_lib.detections(np.zeros((2, 4)), [0, 1], 0.5, CLASSES)
    with pytest.raises(ValueError, match="min_hops"):
        stream_lib.detections(scores, centers, 0.5, CLASSES, min_hops=0)


def test_detections_bridge_dips_and_drop_short_runs():
    a, b, low = [0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.4, 0.3, 0.3]
    scores = np.array([a, a, low, a, a, b, low, low, a])
    centers = np.arange(9) * 0.1
    found = stream_lib.detections(scores, centers, 0.5, CLASSES, min_hops=2, max_gap_hops=1)
    # Hops 0-4 are one run of "a" (the dip at 2 is bridged; 4 hops were on); "b" (one
    # hop) and the last "a" (two hops after it) are too short.
    assert found == [
        {"time_s": 0.2, "start_s": 0.0, "end_s": 0.4, "class": "a", "score": 0.9, "hops": 4}
    ]
    assert len(stream_lib.detections(scores, centers, 0.5, CLASSES, max_gap_hops=3)) == 2


def _tone(seconds, frequency=1000.0):
    t = np.arange(int(seconds * 16000)) / 16000
    return np.sin(2 * np.pi * frequency * t)


def test_locate_events_times_the_sound_not_the_run():
    rng = np.random.default_rng(0)
    samples = 0.01 * rng.standard_normal(5 * 16000)
    # A sound from 2.0 to 2.4 s with a 0.15 s silence inside it (a double beep).
    samples[32000:35200] += _tone(0.2)
    samples[37600:38400] += _tone(0.05)
    # The run's windows (1 s) are centred 1.7-2.5 s: early, as a classifier that
    # hears a sound entering a window more readily than leaving it makes them.
    run = {"time_s": 2.1, "start_s": 1.7, "end_s": 2.5, "class": "a", "score": 0.9, "hops": 9}
    other = dict(run, **{"class": "b", "hops": 3, "start_s": 2.0, "end_s": 2.2})
    quiet = dict(run, **{"time_s": 4.0, "start_s": 3.9, "end_s": 4.1})
    found = stream_lib.locate_events([run, other, quiet], samples, 16000, 1.0)
    # The other class's run heard the same sound: it is dropped; the noise-only run
    # (windows 3.4-4.6 s, clipped to the recording) keeps its times.
    assert found == [
        dict(run, time_s=2.2, start_s=2.0, end_s=2.4),
        {"time_s": 4.0, "start_s": 3.9, "end_s": 4.1, "class": "a", "score": 0.9, "hops": 9},
    ]
    # With independent classes (sigmoid), both classes heard it.
    run = {"time_s": 2.1, "start_s": 1.7, "end_s": 2.5, "class": "a", "score": 0.9, "hops": 9}
    other = dict(run, **{"class": "b", "hops": 3, "start_s": 2.0, "end_s": 2.2})
    both = stream_lib.locate_events([run, other], samples, 16000, 1.0, multi_label=True)
    assert [(item["class"], item["time_s"]) for item in both] == [("a", 2.2), ("b", 2.2)]


@pytest.fixture(scope="module")
def exported_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("stream_workdir"))
    model = leaf_keras.AudioClassifier(
        num_outputs=3,
        frontend=leaf_keras.Leaf(n_filters=8, filterbank="fused"),  # 321 samples of latency
        encoder=leaf_keras.ConvNet([4, 4]),
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
    # Whole hops, then one for the look-ahead; scored from the first full window.
    ends = [((n * 1600 - 321) // 160) * 160 / 16000 for n in range(1, -(-len(samples) // 1600) + 2)]
    hops = sum(end >= 0.5 for end in ends)
    assert result["scores"].shape == (hops, 3)
    np.testing.assert_allclose(result["scores"].sum(axis=1), 1.0, rtol=1e-5)
    assert result["window_seconds"] == 0.5 and result["latency_ms"] == pytest.approx(20.0625)
    assert result["real_time_factor"] > 0
    # Every hop's time is in the warm-up (the first step of each state shape) or the rest.
    steps = -(-len(samples) // 1600) + 1
    assert 1 <= result["state_shapes"] < steps
    steady_audio = (steps - result["state_shapes"]) * 0.1
    assert result["warmup_seconds"] + result["steady_real_time_factor"] * steady_audio == (
        pytest.approx(result["real_time_factor"] * result["audio_seconds"])
    )
    # The window of the last hop ends at the last frame the stream emitted.
    assert result["window_centers"][-1] == pytest.approx(ends[-1] - 0.25)

    done = _run(
        f"--workdir={exported_workdir}",
        f"--audio={audio}",
        "--threshold=0.0",
        "--min_duration_ms=0",
        "--max_gap_ms=0",
    )
    assert done.returncode == 0, done.stderr
    assert "real-time factor" in done.stdout and "latency: 20.06 ms" in done.stdout
    assert re.search(
        r"real-time factor: [\d.]+ \(compute time / audio duration\), [\d.]+ once "
        r"compiled \(the first step of each of the state's \d+ shapes compiles",
        done.stdout,
    ), done.stdout
    with open(os.path.join(exported_workdir, "stream", "recording.csv")) as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == stream_lib.CSV_COLUMNS
    # Threshold 0: every hop is in a run (runs that heard one sound are merged).
    unmerged = stream_lib.detections(result["scores"], result["window_centers"], 0.0, CLASSES)
    assert sum(item["hops"] for item in unmerged) == hops
    assert 0 < len(rows) <= len(unmerged)


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
