"""Tests of the AudioSet manual-download builder and its multi-label task."""

import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import AUDIOSET_LAYOUT

from experiments import data
from experiments.data import audio_io
from experiments.data import audioset
from experiments.data import resample


@pytest.fixture(scope="module")
def audioset_task(audioset_manual_dir, tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("audioset_tfds"))
    return data.load_task(
        "audioset",
        data_dir=data_dir,
        manual_dir=audioset_manual_dir,
        batch_size=4,
        eval_batch_size=4,
        loudness_normalization=False,
    )


def _by_ytid_order(dataset):
    return [(a.numpy(), l.numpy()) for a, l in dataset.unbatch()]


def test_csv_readers(audioset_manual_dir):
    mids, names = audioset.read_class_labels(
        os.path.join(audioset_manual_dir, "class_labels_indices.csv")
    )
    assert mids == AUDIOSET_LAYOUT["mids"] and names == AUDIOSET_LAYOUT["names"]
    segments = audioset.read_segments(os.path.join(audioset_manual_dir, "eval_segments.csv"))
    assert segments == [
        ("ev_E", 30.0, 40.0, ["/m/a3", "/m/a0"]),
        ("ev_F", 30.0, 40.0, ["/m/a1", "/m/zzz"]),
    ]


def test_multi_hot_labels_and_counts(audioset_task):
    task = audioset_task
    assert task.multi_label and task.num_classes == 4 and task.sample_rate == 16000
    assert task.class_names == AUDIOSET_LAYOUT["names"]
    assert task.stats["train/examples"] == 2
    assert task.stats["train/missing"] == 1
    assert task.stats["train/skipped_undecodable"] == 1
    assert task.stats["eval/examples"] == 2
    assert task.stats["eval/unknown_labels"] == 1
    train = _by_ytid_order(task.train)
    assert all(a.shape == (16000,) and l.dtype == np.float32 for a, l in train)
    assert sorted(tuple(l) for _, l in train) == [(0, 0, 1, 0), (1, 1, 0, 0)]
    evaluation = sorted((tuple(l), a.shape) for a, l in _by_ytid_order(task.validation))
    # ev_F: /m/a1 (the unknown mid is dropped), stereo 32 kHz 1 s → 16000 samples.
    assert evaluation == [((0, 1, 0, 0), (16000,)), ((1, 0, 0, 1), (16000,))]
    for _, labels in task.test:
        assert labels.shape[1:] == (4,) and labels.dtype == tf.float32


def test_stereo_clip_is_averaged_and_resampled(audioset_task, audioset_manual_dir):
    stereo_mono, rate = audio_io.read_audio(os.path.join(audioset_manual_dir, "audio", "ev_F.wav"))
    expected = np.round(resample.resample_numpy(stereo_mono.astype(np.float64), rate, 16000))
    got = [a for a, l in _by_ytid_order(audioset_task.test) if l[1] == 1]
    assert len(got) == 1
    np.testing.assert_allclose(got[0], expected / 32768.0, atol=1e-6)


def test_missing_manual_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="class_labels_indices.csv"):
        audioset.read_class_labels(str(tmp_path / "class_labels_indices.csv"))
    bad = tmp_path / "segments.csv"
    bad.write_text("# c\n# c\n# c\nabc, 1.0, 2.0\n")
    with pytest.raises(ValueError, match="3 fields"):
        audioset.read_segments(str(bad))


def test_prepared_dataset_reloads_with_its_stats(
    audioset_task, audioset_manual_dir, tmp_path_factory
):
    data_dir = str(tmp_path_factory.mktemp("audioset_reload"))
    first = data.load_task("audioset/balanced", data_dir=data_dir, manual_dir=audioset_manual_dir)
    # The second load reads the prepared TFDS files, so it needs no manual_dir.
    second = data.load_task("audioset/balanced", data_dir=data_dir)
    assert second.stats == first.stats == audioset_task.stats
    assert second.class_names == first.class_names
