"""Tests of TFDS-backed tasks with tfds.testing.mock_data (nothing is downloaded)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import gin
from experiments import data
from experiments.data import tfds_tasks


def _load(name, **kwargs):
    # mock_data replaces download_and_prepare, which download=True calls; nothing is fetched.
    with tfds.testing.mock_data(num_examples=6):
        task = data.load_task(
            name, batch_size=4, eval_batch_size=4, shuffle_buffer=8, download=True, **kwargs
        )
        batches = {
            split: [(a.numpy(), l.numpy()) for a, l in getattr(task, split)]
            for split in ("train", "validation", "test")
        }
    return task, batches


def test_speech_commands_mock():
    task, batches = _load("speech_commands")
    assert task.num_classes == 12 and task.class_names[-2:] == ("_silence_", "_unknown_")
    assert not task.multi_label and task.sample_rate == 16000
    for audio, labels in batches["train"]:
        assert audio.shape[1:] == (16000,) and audio.dtype == np.float32
        assert labels.dtype == np.int32 and np.all((labels >= 0) & (labels < 12))
    assert sum(len(l) for _, l in batches["train"]) == 6
    # Mock clips are a few dozen samples; evaluation pads them to the 1 s clip length.
    for audio, _ in batches["validation"] + batches["test"]:
        assert audio.shape[1] == 16000


def test_nsynth_tasks_read_the_right_label_feature():
    task, batches = _load("nsynth_instrument")
    assert task.num_classes == 11 and "guitar" in task.class_names
    task, batches = _load("nsynth_pitch")
    assert task.num_classes == 128
    for audio, labels in batches["validation"]:
        # NSynth stores float audio (4 s at 16 kHz); it is passed through unscaled.
        assert audio.shape[1] == 64000 and np.all(labels < 128)


def test_spoken_digit_is_resampled_to_16k():
    task, batches = _load("spoken_digit", clip_seconds=0.5, loudness_normalization=False)
    assert task.sample_rate == 16000 and task.num_classes == 10
    for audio, _ in batches["train"]:
        assert audio.shape[1] == 8000


def test_speaker_ids_are_mapped_to_contiguous_labels():
    task, batches = _load("librispeech_speakers", clip_seconds=0.1)
    assert task.num_classes >= 1
    assert [int(name) for name in task.class_names] == sorted(int(n) for n in task.class_names)
    labels = np.concatenate([l for _, l in batches["train"]])
    assert labels.dtype == np.int32 and np.all((labels >= 0) & (labels < task.num_classes))


def test_generic_tfds_name():
    task, _ = _load("tfds:crema_d")
    assert task.num_classes == 6


def test_an_unprepared_dataset_is_never_downloaded_implicitly(tmp_path):
    data_dir = tmp_path / "tfds"
    with pytest.raises(FileNotFoundError) as error:
        data.load_task("speech_commands", data_dir=str(data_dir))
    message = str(error.value)
    assert "'speech_commands' is not prepared" in message
    assert str(data_dir / "speech_commands") in message
    assert "load_task.download = True" in message
    # Nothing was fetched or created.
    assert not (data_dir / "downloads").exists()


def test_audioset_without_manual_dir_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_task.manual_dir"):
        data.load_task("audioset", data_dir=str(tmp_path))


def test_table_entries_are_well_formed():
    for name, spec in tfds_tasks.TFDS_TASKS.items():
        assert len(spec.splits) == 3, name
        assert spec.sample_rate in (8000, 16000), name


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="not_a_dataset"):
        data.load_task("not_a_dataset")
    with pytest.raises(ValueError, match="batch_size"):
        data.load_task("speech_commands", batch_size=0)
    with pytest.raises(ValueError, match="clip_seconds"):
        data.load_task("speech_commands", clip_seconds=0.001)
    with pytest.raises(ValueError, match="bogus"):
        data.load_task("speech_commands", bogus=1)


def test_load_task_is_gin_configurable(synthetic_commands_data_dir):
    gin.clear_config()
    try:
        gin.parse_config(
            [
                "load_task.dataset = 'synthetic_commands/tiny'",
                f"load_task.data_dir = '{synthetic_commands_data_dir}'",
                "load_task.batch_size = 5",
                "loudness_normalization.target_db = 10.0",
            ]
        )
        task = data.load_task()
        audio, labels = next(iter(task.train))
        assert audio.shape == (5, 16000) and task.name == "synthetic_commands/tiny"
    finally:
        gin.clear_config()


def test_task_options_bind_through_gin(speech_commands_dir):
    gin.clear_config()
    try:
        gin.parse_config(
            [
                "load_task.dataset = 'speech_commands_folder'",
                f"load_task.data_dir = '{speech_commands_dir}'",
                "load_task.task = 'all_words'",
                "load_task.manual_dir = None",  # None-valued options count as unset.
            ]
        )
        task = data.load_task()
        assert task.class_names == ("cat", "dog", "no", "up", "yes")
    finally:
        gin.clear_config()
