"""Folder and CSV datasets: layouts, formats, resampling, splits, the decode cache, errors."""

import csv
import json
import os

import fixtures_train
import numpy as np
import pytest
import soundfile

from experiments import data
from experiments.data import audio_folder
from experiments.data import audio_io
from experiments.data import csv_manifest
from experiments.data import local_audio

RATE = 16000


def _tone(frequency, rate, seconds=0.5, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * np.pi * frequency * t)
    return np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave


def _write(path, samples, rate, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, samples, rate, **kwargs)


@pytest.fixture
def sound_folder(tmp_path):
    """Three classes in mixed formats, rates and channel counts, plus three bad files."""
    root = tmp_path / "sounds"
    for index in range(6):
        _write(str(root / "dog_bark" / f"bark_{index}.wav"), _tone(500, 44100, channels=2), 44100)
        _write(str(root / "siren" / f"siren_{index}.flac"), _tone(1500, 22050), 22050)
        _write(str(root / "bird" / f"bird_{index}.ogg"), _tone(3000, 48000), 48000)
    (root / "siren" / "empty.wav").write_bytes(b"")
    (root / "siren" / "garbage.wav").write_bytes(os.urandom(2000))
    full = root / "dog_bark" / "bark_0.wav"
    (root / "dog_bark" / "truncated.wav").write_bytes(full.read_bytes()[:1000])
    (root / "dog_bark" / "notes.txt").write_text("not audio")
    return root


def _load(dataset, data_dir, tmp_path, **options):
    return data.load_task(
        dataset,
        data_dir=str(data_dir),
        batch_size=4,
        eval_batch_size=4,
        shuffle_buffer=8,
        cache_dir=str(tmp_path / "cache"),
        **options,
    )


def _examples(dataset):
    return [(a.numpy(), l.numpy()) for a, l in dataset.unbatch()]


def test_audio_folder_reads_every_format_and_counts_bad_files(sound_folder, tmp_path):
    task = _load("audio_folder", sound_folder, tmp_path, loudness_normalization=False)
    assert task.class_names == ("bird", "dog_bark", "siren")
    assert task.num_classes == 3 and not task.multi_label
    stats = task.stats
    assert stats["skipped"] == 3
    skipped = sorted(os.path.basename(item["path"]) for item in stats["skipped_files"])
    assert skipped == ["empty.wav", "garbage.wav", "truncated.wav"]
    counts = {split: len(_examples(getattr(task, split))) for split in local_audio.SPLITS}
    assert sum(counts.values()) == 18
    assert counts == {split: stats[f"{split}/examples"] for split in local_audio.SPLITS}
    # 6 files per class: 1 test and 1 validation each (round(0.6) = 1).
    assert counts["test"] == 3 and counts["validation"] == 3
    for audio, _ in _examples(task.test):
        # Evaluation pads the 0.5 s clips (16 kHz after resampling) to the 1 s clip length.
        assert audio.shape == (RATE,) and audio.dtype == np.float32
        assert np.all(audio[RATE // 2 + 50 :] == 0.0) and np.abs(audio[: RATE // 2]).max() > 0.3


@pytest.mark.parametrize("rate", [44100, 22050, 48000, 8000])
def test_decoding_resamples_with_an_anti_aliasing_filter(tmp_path, rate):
    path = str(tmp_path / f"tone_{rate}.wav")
    _write(path, _tone(1000, rate, seconds=1.0, channels=2), rate, subtype="PCM_24")
    samples = local_audio.decode(path, RATE).astype(np.float64) / 32768
    assert samples.shape == (RATE,)
    expected = _tone(1000, RATE, seconds=1.0)
    middle = slice(1000, RATE - 1000)  # away from the filter's edge transients
    np.testing.assert_allclose(samples[middle], expected[middle], atol=2e-3)
    if rate > 2 * 8000:
        # A tone above the output's Nyquist frequency is filtered out, not aliased.
        _write(path, _tone(0.45 * rate, rate, seconds=1.0), rate)
        aliased = local_audio.decode(path, RATE).astype(np.float64) / 32768
        assert np.sqrt(np.mean(aliased[middle] ** 2)) < 2e-3


def test_splits_are_deterministic_and_follow_the_fractions(sound_folder):
    first, names = audio_folder.list_files(str(sound_folder), 0.2, 0.3)
    second, _ = audio_folder.list_files(str(sound_folder), 0.2, 0.3)
    assert first == second and names == ("bird", "dog_bark", "siren")
    bird = [f for f in first if f.labels == (0,)]
    assert [f.split for f in bird].count("test") == 2  # round(6 * 0.3)
    assert [f.split for f in bird].count("validation") == 1  # round(6 * 0.2)


def test_split_folders_are_used_as_given(tmp_path):
    root = tmp_path / "given"
    for split, count in (("train", 3), ("validation", 1), ("test", 2)):
        for name in ("cat", "dog"):
            for index in range(count):
                _write(str(root / split / name / f"{index}.wav"), _tone(440, RATE), RATE)
    files, names = audio_folder.list_files(str(root))
    assert names == ("cat", "dog")
    assert sorted(f.split for f in files).count("train") == 6
    assert sorted(f.split for f in files).count("test") == 4


def test_files_are_decoded_once(sound_folder, tmp_path, monkeypatch):
    first = _load("audio_folder", sound_folder, tmp_path)

    def fail(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(local_audio, "decode", fail)
    second = _load("audio_folder", sound_folder, tmp_path)
    assert second.stats == first.stats
    assert len(_examples(second.train)) == len(_examples(first.train))


def _write_csv(path, rows, header=("path", "label", "split")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_csv_multi_label_with_relative_paths_and_given_splits(sound_folder, tmp_path):
    rows = []
    for index in range(6):
        split = ["train", "train", "train", "train", "validation", "test"][index]
        rows.append((f"sounds/dog_bark/bark_{index}.wav", "dog", split))
        rows.append((f"sounds/siren/siren_{index}.flac", "siren;alarm", split))
    rows.append(("sounds/missing.wav", "dog", "train"))
    manifest = sound_folder.parent / "labels.csv"
    _write_csv(manifest, rows)
    task = _load("csv", manifest, tmp_path)
    assert task.multi_label and task.class_names == ("alarm", "dog", "siren")
    assert task.stats["skipped"] == 1
    assert task.stats["skipped_files"][0]["reason"].endswith("file does not exist.")
    labels = [label for _, label in _examples(task.test)]
    assert sorted(map(tuple, labels)) == [(0.0, 1.0, 0.0), (1.0, 0.0, 1.0)]
    assert task.stats["train/examples"] == 8


def test_csv_without_split_column_is_split_by_name(sound_folder, tmp_path):
    rows = [(f"sounds/bird/bird_{i}.ogg", "bird") for i in range(6)]
    rows += [(f"sounds/siren/siren_{i}.flac", "siren") for i in range(6)]
    manifest = sound_folder.parent / "labels.csv"
    _write_csv(manifest, rows, header=("path", "label"))
    files, names, multi_label = csv_manifest.list_files(str(manifest))
    assert names == ("bird", "siren") and not multi_label
    assert sorted(f.split for f in files).count("test") == 2


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: root.mkdir(), "no class folders"),
        (lambda root: (root / "a").mkdir(parents=True), "hold no audio files"),
        (
            lambda root: _write(str(root / "only" / "x.wav"), _tone(440, RATE), RATE),
            "a classifier needs at least two",
        ),
    ],
)
def test_audio_folder_errors_name_the_folder(tmp_path, make, message):
    root = tmp_path / "bad"
    make(root)
    with pytest.raises(ValueError, match=message) as error:
        _load("audio_folder", root, tmp_path)
    assert str(root) in str(error.value)


def test_missing_folder_and_csv_column_are_reported(tmp_path):
    with pytest.raises(audio_io.DataNotFoundError, match="nowhere"):
        _load("audio_folder", tmp_path / "nowhere", tmp_path)
    manifest = tmp_path / "labels.csv"
    _write_csv(manifest, [("a.wav", "x")], header=("file", "label"))
    with pytest.raises(ValueError, match="no column 'path'") as error:
        _load("csv", manifest, tmp_path)
    assert str(manifest) in str(error.value)


def test_speech_commands_folder_error_points_to_audio_folder(sound_folder, tmp_path):
    with pytest.raises(audio_io.DataNotFoundError, match="audio_folder"):
        _load_speech_commands(sound_folder)


def _load_speech_commands(root):
    return data.load_task("speech_commands_folder", data_dir=str(root))


def test_training_on_an_audio_folder_end_to_end(sound_folder, tmp_path):
    workdir = tmp_path / "work"
    bindings = [
        "load_task.dataset = 'audio_folder'",
        f"load_task.data_dir = '{sound_folder}'",
        f"load_task.cache_dir = '{tmp_path / 'cache'}'",
        "load_task.batch_size = 4",
        "train.num_epochs = 1",
        "train.verbose = 2",
        "ConvNet.filters = [4, 4]",
        "export.tflite = False",
    ]
    process = fixtures_train.run_main(
        ["--gin_config=gin/mel.gin", f"--workdir={workdir}"]
        + [f"--gin_bindings={b}" for b in bindings]
    )
    assert process.returncode == 0, fixtures_train.describe(process)
    with open(workdir / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["class_names"] == ["bird", "dog_bark", "siren"]
    assert metrics["num_examples"] == 3
    assert metrics["dataset_stats"]["skipped"] == 3
    with open(workdir / "export" / "export_info.json") as f:
        assert json.load(f)["class_names"] == ["bird", "dog_bark", "siren"]


def test_a_non_utf8_file_name_is_skipped_and_counted(sound_folder, tmp_path):
    name = os.path.join(os.fsencode(sound_folder), b"bird", b"bird_\xff\xfe.wav")
    with open(name, "wb") as f:
        f.write((sound_folder / "bird" / "bird_0.ogg").read_bytes())
    task = _load("audio_folder", sound_folder, tmp_path)
    assert task.stats["skipped"] == 4
    (item,) = [f for f in task.stats["skipped_files"] if "not valid UTF-8" in f["reason"]]
    assert item["path"].endswith("bird/bird_\\xff\\xfe.wav")
    assert sum(task.stats[f"{split}/examples"] for split in local_audio.SPLITS) == 18


@pytest.mark.parametrize("bad_split", ["train", "test"])
def test_a_split_whose_files_are_all_bad_fails_before_training(tmp_path, bad_split):
    root = tmp_path / "sounds"
    for split in local_audio.SPLITS:
        for label in ("a", "b"):
            path = root / split / label / "clip.wav"
            if split == bad_split:
                os.makedirs(path.parent, exist_ok=True)
                path.write_bytes(b"garbage, not a WAV file")
            else:
                _write(str(path), _tone(500, RATE), RATE)
    with pytest.raises(ValueError, match=f"no usable clip in the {bad_split} split: all 2 of"):
        _load("audio_folder", root, tmp_path)


def test_a_float_file_with_nan_or_inf_samples_is_skipped_and_counted(sound_folder, tmp_path):
    for index, bad in enumerate((np.nan, np.inf)):
        samples = _tone(700, 16000).astype(np.float32)
        samples[100] = bad
        _write(str(sound_folder / "bird" / f"corrupt_{index}.wav"), samples, 16000, subtype="FLOAT")
    clean = _tone(700, 16000).astype(np.float32)
    _write(str(sound_folder / "bird" / "float_ok.wav"), clean, 16000, subtype="FLOAT")
    task = _load("audio_folder", sound_folder, tmp_path)
    reasons = {os.path.basename(f["path"]): f["reason"] for f in task.stats["skipped_files"]}
    assert "1 NaN or inf samples" in reasons["corrupt_0.wav"]
    assert "1 NaN or inf samples" in reasons["corrupt_1.wav"]
    assert "float_ok.wav" not in reasons
    assert sum(task.stats[f"{split}/examples"] for split in local_audio.SPLITS) == 19
