"""Tests of the local Speech Commands folder pipeline (experiments.data)."""

import collections
import os
import wave

import numpy as np
import pytest
import tensorflow as tf
from conftest import SPEECH_COMMANDS_LAYOUT

from experiments import data
from experiments.data import speech_commands_folder as scf

TTS_COMMANDS = "/work/shared/data/tts_commands"


def _label_counts(dataset):
    counts = collections.Counter()
    for _, labels in dataset:
        counts.update(labels.numpy().tolist())
    return dict(counts)


def _read_wav(path):
    with wave.open(path, "rb") as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), "<i2")


def test_twelve_class_names_match_tfds_order():
    assert scf.TWELVE_CLASS_NAMES == (
        "down",
        "go",
        "left",
        "no",
        "off",
        "on",
        "right",
        "stop",
        "up",
        "yes",
        "_silence_",
        "_unknown_",
    )


def test_silence_piece_starts_match_tfds_rule():
    # TFDS: range(0, len - 16000, 8000).
    assert scf.silence_piece_starts(40000) == [0, 8000, 16000]
    assert scf.silence_piece_starts(32000) == [0, 8000]
    assert scf.silence_piece_starts(16000) == []


def test_twelve_class_task_labels_and_counts(speech_commands_dir):
    task = data.load_task(
        "speech_commands_folder", data_dir=speech_commands_dir, batch_size=4, eval_batch_size=3
    )
    assert task.num_classes == 12 and not task.multi_label and task.sample_rate == 16000
    assert task.class_names == scf.TWELVE_CLASS_NAMES
    yes, no, up, silence, unknown = 9, 3, 8, 10, 11
    # Train: yes/no/up/cat/dog of speaker a + 3 pieces of white_noise.wav.
    assert _label_counts(task.train) == {yes: 1, no: 1, up: 1, unknown: 2, silence: 3}
    # Validation: speaker b + 2 pieces of running_tap.wav (TFDS puts it in validation).
    assert _label_counts(task.validation) == {yes: 1, no: 1, up: 1, unknown: 2, silence: 2}
    assert _label_counts(task.test) == {yes: 1, no: 1, up: 1, unknown: 2}
    assert task.stats["train/examples"] == 8
    assert task.stats["train/skipped_undecodable"] == 0
    for audio, labels in task.train:
        assert audio.shape[1:] == (16000,) and audio.dtype == tf.float32
        assert labels.dtype == tf.int32


def test_silence_pieces_are_the_noise_samples(speech_commands_dir):
    splits, _, _ = scf.build_splits(speech_commands_dir)
    silence = [a.numpy() for a, label in splits["validation"] if int(label) == 10]
    noise = _read_wav(os.path.join(speech_commands_dir, "_background_noise_", "running_tap.wav"))
    assert len(silence) == 2
    for piece, start in zip(silence, (0, 8000)):
        np.testing.assert_allclose(piece, noise[start : start + 16000] / 32768.0, atol=1e-7)


def test_clips_are_whole_files_scaled_to_float(speech_commands_dir):
    splits, _, _ = scf.build_splits(speech_commands_dir, task="all_words")
    lengths = sorted(int(tf.shape(a)[0]) for a, _ in splits["train"])
    assert lengths == [12000, 16000, 16000, 16000, 16000]
    audio, _ = next(iter(splits["test"]))
    names = sorted(
        n for n in open(os.path.join(speech_commands_dir, "testing_list.txt")).read().split()
    )
    np.testing.assert_allclose(
        audio.numpy(), _read_wav(os.path.join(speech_commands_dir, names[0])) / 32768.0, atol=1e-7
    )


@pytest.mark.parametrize("task_name", ["all_words", "35_word"])
def test_all_words_task(speech_commands_dir, task_name):
    task = data.load_task(
        "speech_commands_folder", data_dir=speech_commands_dir, task=task_name, batch_size=8
    )
    assert task.class_names == ("cat", "dog", "no", "up", "yes")
    for split in (task.train, task.validation, task.test):
        assert _label_counts(split) == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}


def test_corrupt_and_missing_files_are_skipped_and_counted(tmp_path, make_speech_commands_folder):
    root = make_speech_commands_folder(tmp_path / "sc", corrupt=True)
    task = data.load_task("speech_commands_folder", data_dir=root, batch_size=16)
    assert task.stats["train/skipped_undecodable"] == len(SPEECH_COMMANDS_LAYOUT["corrupt_files"])
    assert task.stats["validation/missing"] == 1
    assert task.stats["test/skipped_undecodable"] == 0
    # The clean examples are all still there and the pipelines run to the end.
    assert sum(_label_counts(task.train).values()) == 8
    assert sum(_label_counts(task.validation).values()) == 7


def test_test_dir_replaces_testing_list(tmp_path, speech_commands_dir, write_wav):
    test_dir = tmp_path / "test_set"
    write_wav(test_dir / "yes" / "x_nohash_0.wav", np.zeros(16000))
    write_wav(test_dir / "_silence_" / "s_nohash_0.wav", np.zeros(16000))
    write_wav(test_dir / "_unknown_" / "u_nohash_0.wav", np.zeros(16000))
    task = data.load_task(
        "speech_commands_folder", data_dir=speech_commands_dir, test_dir=str(test_dir)
    )
    assert _label_counts(task.test) == {9: 1, 10: 1, 11: 1}


def test_missing_folder_and_list_raise_clear_errors(tmp_path, make_speech_commands_folder):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.load_task("speech_commands_folder", data_dir=missing)
    root = make_speech_commands_folder(tmp_path / "sc")
    os.remove(os.path.join(root, "testing_list.txt"))
    with pytest.raises(ValueError, match="testing_list.txt"):
        data.load_task("speech_commands_folder", data_dir=root)
    with pytest.raises(ValueError, match="task"):
        data.load_task("speech_commands_folder", data_dir=root, task="7_class")
    with pytest.raises(ValueError, match="data_dir"):
        data.load_task("speech_commands_folder")


def test_eval_pipelines_are_deterministic(speech_commands_dir):
    def collect(dataset):
        return [(a.numpy(), l.numpy()) for a, l in dataset]

    first = data.load_task(
        "speech_commands_folder", data_dir=speech_commands_dir, eval_batch_size=2
    )
    second = data.load_task(
        "speech_commands_folder", data_dir=speech_commands_dir, eval_batch_size=2
    )
    for a, b in zip(
        collect(first.validation) + collect(first.test),
        collect(second.validation) + collect(second.test),
    ):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # Iterating the same pipeline twice gives the same batches too.
    for a, b in zip(collect(first.validation), collect(first.validation)):
        np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.skipif(not os.path.isdir(TTS_COMMANDS), reason="tts_commands folder not present")
def test_real_tts_commands_folder_class_counts():
    splits, names, stats = scf.build_splits(TTS_COMMANDS)
    counts = {
        split: collections.Counter(int(l) for l in ds.map(lambda a, l: l))
        for split, ds in splits.items()
    }
    # 40 speakers x 28 words; 4 speakers in validation, 4 in test. The 10 commands have
    # 32 / 4 / 4 clips each, 18 other words → _unknown_; 3 x 30 s noise → 3 x 58 silence.
    for index in range(10):
        assert (counts["train"][index], counts["validation"][index], counts["test"][index]) == (
            32,
            4,
            4,
        ), names[index]
    assert (counts["train"][11], counts["validation"][11], counts["test"][11]) == (576, 72, 72)
    assert (counts["train"][10], counts["validation"][10], counts["test"][10]) == (174, 0, 0)
    assert stats["train/skipped_undecodable"] == 0 and stats["validation/missing"] == 0
    task = data.load_task("speech_commands_folder", data_dir=TTS_COMMANDS, task="all_words")
    assert task.num_classes == 28
