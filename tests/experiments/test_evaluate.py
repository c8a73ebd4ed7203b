"""experiments.evaluate: whole-clip and windowed evaluation, metrics.json."""

import json

import numpy as np
import pytest
import tensorflow as tf

from experiments import data
from experiments import evaluate


class _RecordingModel:
    """Logits = [mean, first sample] of each clip; records the batch sizes it is given."""

    def __init__(self):
        self.batch_sizes = []

    def predict_on_batch(self, waveforms):
        waveforms = np.asarray(waveforms)
        self.batch_sizes.append(len(waveforms))
        return np.stack([waveforms.mean(axis=1), waveforms[:, 0]], axis=1)


@pytest.mark.parametrize(
    "num_samples, window, hop, expected",
    [
        (100, 100, 100, [0]),
        (60, 100, 100, [0]),
        (300, 100, 100, [0, 100, 200]),
        (350, 100, 100, [0, 100, 200, 250]),  # the last window ends at the clip's end
        (300, 100, 50, [0, 50, 100, 150, 200]),
    ],
)
def test_window_starts_cover_the_clip(num_samples, window, hop, expected):
    assert evaluate.window_starts(num_samples, window, hop) == expected


def _task(clips, labels, clip_samples, sample_rate=100):
    dataset = tf.data.Dataset.from_tensor_slices((clips, labels)).batch(2)
    return data.AudioTask(
        name="windows",
        train=dataset,
        validation=dataset,
        test=dataset,
        num_classes=2,
        multi_label=False,
        sample_rate=sample_rate,
        class_names=("a", "b"),
        stats={},
        eval_preprocessing={"min_length": clip_samples, "loudness_normalize": False},
    )


def test_auto_protocol_averages_the_logits_of_crop_long_windows(tmp_path):
    rng = np.random.default_rng(0)
    clips = rng.normal(size=(3, 350)).astype(np.float32)
    task = _task(clips, np.array([0, 1, 1], np.int32), clip_samples=100)
    model = _RecordingModel()
    results = evaluate.evaluate(model, task, str(tmp_path), checkpoint=None)
    assert results["evaluation"] == {
        "protocol": "windowed",
        "window_seconds": 1.0,
        "hop_seconds": 1.0,
    }
    labels, logits = evaluate.predict_split(model, task.test, window=100, hop=100)
    expected = np.array(
        [
            np.mean([[clip[s : s + 100].mean(), clip[s]] for s in (0, 100, 200, 250)], axis=0)
            for clip in clips
        ]
    )
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(labels, [0, 1, 1])
    # Never more windows per call than the batch held clips.
    assert max(model.batch_sizes) <= 2
    with open(tmp_path / "metrics.json") as f:
        assert json.load(f)["evaluation"]["protocol"] == "windowed"


def test_whole_clip_protocol_scores_each_clip_once(tmp_path):
    clips = np.random.default_rng(1).normal(size=(2, 350)).astype(np.float32)
    task = _task(clips, np.array([0, 1], np.int32), clip_samples=100)
    model = _RecordingModel()
    results = evaluate.evaluate(model, task, str(tmp_path), checkpoint=None, window_seconds=None)
    assert results["evaluation"] == {"protocol": "whole_clip"}
    assert model.batch_sizes == [2]
    expected_accuracy = float(
        np.mean(np.argmax(np.stack([clips.mean(axis=1), clips[:, 0]], axis=1), axis=1) == [0, 1])
    )
    assert results["accuracy"] == pytest.approx(expected_accuracy)


def test_explicit_windows_and_bad_windows(tmp_path):
    clips = np.random.default_rng(2).normal(size=(2, 300)).astype(np.float32)
    task = _task(clips, np.array([0, 1], np.int32), clip_samples=100)
    results = evaluate.evaluate(
        _RecordingModel(),
        task,
        str(tmp_path),
        checkpoint=None,
        window_seconds=2.0,
        hop_seconds=0.5,
    )
    assert results["evaluation"] == {
        "protocol": "windowed",
        "window_seconds": 2.0,
        "hop_seconds": 0.5,
    }
    with pytest.raises(ValueError, match="window_seconds"):
        evaluate.evaluate(
            _RecordingModel(), task, str(tmp_path), checkpoint=None, window_seconds=-1.0
        )
