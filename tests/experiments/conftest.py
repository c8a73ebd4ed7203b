"""Shared fixtures for the experiments tests (TensorFlow only).

Fixtures (names are stable; other experiment tests may use them):

* ``write_wav(path, samples, sample_rate=16000)`` — fixture returning a function
  that writes int16 (or float in [-1, 1]) samples, mono [T] or multi-channel
  [T, C], as 16-bit PCM WAV with the stdlib `wave` module (creates folders).
* ``make_speech_commands_folder(root, corrupt=False)`` — factory fixture that
  writes a tiny Speech Commands v0.02 folder and returns its path. Words yes, no,
  up (commands) and cat, dog (→ `_unknown_`), three speakers each: "a..." train,
  "b..." listed in validation_list.txt, "c..." in testing_list.txt; one train
  clip (`up/a0000000_nohash_0.wav`) is 0.75 s long, the rest 1 s.
  `_background_noise_/white_noise.wav` (2.5 s → 3 train silence pieces) and
  `running_tap.wav` (1.6 s → 2 validation silence pieces). With `corrupt=True`
  it adds two undecodable train files (garbage bytes, truncated) and one
  validation list entry without a file. See `SPEECH_COMMANDS_LAYOUT`.
* ``speech_commands_dir`` — a clean folder from the factory (session scope).
* ``audioset_manual_dir`` — a tiny AudioSet manual_dir (session scope): 4 classes
  (/m/a0../m/a3), train segments tr_A (a0,a1), tr_B (a2), tr_missing (no clip),
  tr_corrupt (garbage); eval segments ev_E (a3,a0), ev_F (a1 + unknown /m/zzz,
  stereo 32 kHz, resampled). See `AUDIOSET_LAYOUT`.
* ``synthetic_commands_data_dir`` — a TFDS data_dir with "synthetic_commands/tiny"
  prepared (session scope): `load_task("synthetic_commands/tiny", data_dir=...)`.
* ``load_benchmark(name)`` — fixture returning a function that imports
  `benchmarks/<name>.py` (not a package) and returns the module.
"""

import importlib.util
import os
import wave

import numpy as np
import pytest

SPEECH_COMMANDS_LAYOUT = {
    "words": ("yes", "no", "up", "cat", "dog"),
    "speakers": {"a0000000": "train", "b0000000": "validation", "c0000000": "test"},
    "short_clip": "up/a0000000_nohash_0.wav",
    "noise_files": {"white_noise.wav": 40000, "running_tap.wav": 25600},
    "silence_pieces": {"train": 3, "validation": 2},
    "corrupt_files": ("yes/a0000000_nohash_1.wav", "no/a0000000_nohash_1.wav"),
    "missing_entry": "no/b0000000_nohash_9.wav",
}

AUDIOSET_LAYOUT = {
    "mids": ("/m/a0", "/m/a1", "/m/a2", "/m/a3"),
    "names": ("Alpha", "Beta, with comma", "Gamma", "Delta"),
    "train": {
        "tr_A": ["/m/a0", "/m/a1"],
        "tr_B": ["/m/a2"],
        "tr_missing": ["/m/a0"],
        "tr_corrupt": ["/m/a3"],
    },
    "eval": {"ev_E": ["/m/a3", "/m/a0"], "ev_F": ["/m/a1", "/m/zzz"]},
}


BENCHMARKS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks"
)


def _load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARKS_DIR, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    return _load_benchmark


def _write_wav(path, samples, sample_rate=16000):
    samples = np.asarray(samples)
    if samples.dtype.kind == "f":
        samples = np.clip(np.round(samples * 32767), -32768, 32767)
    samples = samples.astype("<i2")
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(samples.tobytes())
    return str(path)


@pytest.fixture(scope="session")
def write_wav():
    return _write_wav


def _tone(seed, length):
    rng = np.random.default_rng(seed)
    t = np.arange(length) / 16000.0
    return 0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t) + 0.01 * rng.standard_normal(length)


def _make_speech_commands_folder(root, corrupt=False):
    root = str(root)
    layout = SPEECH_COMMANDS_LAYOUT
    lists = {"validation": [], "test": []}
    for word_index, word in enumerate(layout["words"]):
        for speaker_index, (speaker, split) in enumerate(layout["speakers"].items()):
            relative = f"{word}/{speaker}_nohash_0.wav"
            length = 12000 if relative == layout["short_clip"] else 16000
            _write_wav(os.path.join(root, relative), _tone(word_index * 10 + speaker_index, length))
            if split in lists:
                lists[split].append(relative)
    for index, (name, length) in enumerate(layout["noise_files"].items()):
        noise = 0.05 * np.random.default_rng(100 + index).standard_normal(length)
        _write_wav(os.path.join(root, "_background_noise_", name), noise)
    with open(os.path.join(root, "_background_noise_", "README.md"), "w") as handle:
        handle.write("not audio\n")
    if corrupt:
        garbage, truncated = (os.path.join(root, p) for p in layout["corrupt_files"])
        with open(garbage, "wb") as handle:
            handle.write(b"this is not a wav file at all" * 10)
        _write_wav(truncated, _tone(99, 16000))
        with open(truncated, "r+b") as handle:
            handle.truncate(2000)
        lists["validation"].append(layout["missing_entry"])
    for split, filename in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        with open(os.path.join(root, filename), "w") as handle:
            handle.write("\n".join(sorted(lists[split])) + "\n")
    return root


@pytest.fixture(scope="session")
def make_speech_commands_folder():
    return _make_speech_commands_folder


@pytest.fixture(scope="session")
def speech_commands_dir(tmp_path_factory):
    return _make_speech_commands_folder(tmp_path_factory.mktemp("speech_commands"))


@pytest.fixture(scope="session")
def audioset_manual_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("audioset_manual"))
    layout = AUDIOSET_LAYOUT
    with open(os.path.join(root, "class_labels_indices.csv"), "w") as handle:
        handle.write("index,mid,display_name\n")
        for index, (mid, name) in enumerate(zip(layout["mids"], layout["names"])):
            handle.write(f'{index},{mid},"{name}"\n')
    header = (
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# num_ytids=4, num_segs=4, num_unique_labels=4, num_positive_labels=5\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
    )
    for filename, split in (
        ("balanced_train_segments.csv", "train"),
        ("eval_segments.csv", "eval"),
    ):
        with open(os.path.join(root, filename), "w") as handle:
            handle.write(header)
            for ytid, mids in layout[split].items():
                handle.write(f'{ytid}, 30.000, 40.000, "{",".join(mids)}"\n')
    audio = os.path.join(root, "audio")
    _write_wav(os.path.join(audio, "tr_A.wav"), _tone(1, 16000))
    _write_wav(os.path.join(audio, "tr_B.wav"), _tone(2, 8000))
    with open(os.path.join(audio, "tr_corrupt.wav"), "wb") as handle:
        handle.write(b"RIFF....garbage")
    _write_wav(os.path.join(audio, "ev_E.wav"), _tone(3, 16000))
    stereo = np.stack([_tone(4, 32000), _tone(5, 32000)], axis=1)
    _write_wav(os.path.join(audio, "ev_F.wav"), stereo, sample_rate=32000)
    return root


@pytest.fixture(scope="session")
def synthetic_commands_data_dir(tmp_path_factory):
    # Imported here so that collecting other tests does not import TFDS.
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    # Importing the module registers the builder with TFDS.
    from experiments.data import synthetic_commands  # noqa: F401 pylint: disable=all

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder("synthetic_commands/tiny", data_dir=data_dir).download_and_prepare()
    return data_dir
