"""Speech Commands from a local extracted folder (the `speech_commands_v0.02` layout).

Expected layout (as extracted from speech_commands_v0.02.tar.gz)::

    <root>/<word>/<speaker>_nohash_<n>.wav     16 kHz 16-bit PCM clips, one folder per word
    <root>/validation_list.txt                 relative paths of the validation clips
    <root>/testing_list.txt                    relative paths of the test clips
    <root>/_background_noise_/*.wav            long noise recordings (source of `_silence_`)

Every clip in neither list is a training clip. Two tasks:

* ``"12_class"`` reproduces TFDS `speech_commands` exactly: labels are the ten
  command words in TFDS order (down go left no off on right stop up yes), then
  `_silence_` (10) and `_unknown_` (11, every other word). Silence examples are
  1 s pieces of the background-noise files taken every 0.5 s, as TFDS builds them
  (starts 0, 8000, ... while start < num_samples - 16000); `running_tap.wav` goes to
  validation and the other noise files to training, as in TFDS. TFDS's test split
  comes from the separate `speech_commands_test_set_v0.02` archive (which has its
  own `_silence_` folder); pass its extracted folder as `test_dir` to get the same
  test set, otherwise the test split is `testing_list.txt` (no silence clips).
* ``"all_words"`` (alias ``"35_word"``): every word folder is a class (sorted
  names; 35 words in v0.02), no silence, splits from the two lists.

Files that are corrupt, truncated, not 16-bit PCM or not 16 kHz are skipped,
logged and counted in `stats` (`<split>/skipped_undecodable`); list entries whose
file does not exist are counted in `<split>/missing`. Neither is fatal.
"""

import os

import tensorflow as tf
from absl import logging

from experiments.data import audio_io

SAMPLE_RATE = 16000
COMMAND_WORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
BACKGROUND_NOISE = "_background_noise_"
TWELVE_CLASS_NAMES = COMMAND_WORDS + (SILENCE, UNKNOWN)
TASKS = ("12_class", "all_words", "35_word")
# TFDS puts this noise file's silence pieces in validation, every other one in train.
VALIDATION_NOISE_FILES = ("running_tap.wav",)


def _read_list(path: str) -> list:
    audio_io.require_path(
        path,
        "Speech Commands split list",
        hint="For a folder with one sub-folder of audio files per class, use "
        "load_task.dataset = 'audio_folder'.",
    )
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def _word_folders(root: str) -> list:
    return sorted(
        name
        for name in os.listdir(root)
        if not name.startswith("_") and os.path.isdir(os.path.join(root, name))
    )


def _list_wavs(folder: str) -> list:
    return sorted(name for name in os.listdir(folder) if name.lower().endswith(".wav"))


def silence_piece_starts(num_samples: int) -> list:
    """Starts of the 1 s silence pieces TFDS cuts from a background-noise file."""
    return list(range(0, num_samples - SAMPLE_RATE, SAMPLE_RATE // 2))


class _SplitBuilder:
    """Collects (path, start, length, label) rows of one split and their counters."""

    def __init__(self, split: str, stats: dict, verify: bool):
        self.split = split
        self.stats = stats
        self.verify = verify
        self.paths, self.starts, self.lengths, self.labels = [], [], [], []
        for key in ("examples", "missing", "skipped_undecodable"):
            stats.setdefault(f"{split}/{key}", 0)

    def _count(self, key: str):
        self.stats[f"{self.split}/{key}"] += 1

    def _check(self, path: str):
        """Returns the number of frames, or None (counted and logged) if unusable."""
        if not os.path.isfile(path):
            self._count("missing")
            logging.warning(
                "Speech Commands %s: listed file %s does not exist; skipped.", self.split, path
            )
            return None
        if not self.verify:
            return -1
        return self._num_frames(path, "")

    def _num_frames(self, path: str, what: str):
        """The WAV file's number of frames, or None (counted and logged) if undecodable."""
        try:
            num_frames, _ = audio_io.inspect_wav(path, SAMPLE_RATE)
        except audio_io.UndecodableAudioError as error:
            self._count("skipped_undecodable")
            logging.warning("Speech Commands %s: skipped %s%s", self.split, what, error)
            return None
        return num_frames

    def add_clip(self, path: str, label: int):
        if self._check(path) is None:
            return
        self._append(path, 0, -1, label)

    def add_silence_pieces(self, path: str, label: int):
        if not os.path.isfile(path):
            return
        num_frames = self._num_frames(path, "background noise ")
        if num_frames is None:
            return
        for start in silence_piece_starts(num_frames):
            self._append(path, start, SAMPLE_RATE, label)

    def _append(self, path, start, length, label):
        self.paths.append(path)
        self.starts.append(start)
        self.lengths.append(length)
        self.labels.append(label)
        self._count("examples")

    def dataset(self) -> tf.data.Dataset:
        """Unbatched (float32 waveform [time], int32 label) in a fixed order."""
        rows = (
            tf.constant(self.paths, tf.string),
            tf.constant(self.starts, tf.int32),
            tf.constant(self.lengths, tf.int32),
            tf.constant(self.labels, tf.int32),
        )
        if not self.paths:
            rows = (tf.zeros([0], tf.string),) + tuple(tf.zeros([0], tf.int32) for _ in range(3))
        return (
            tf.data.Dataset.from_tensor_slices(rows)
            .map(_decode_row, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            # The header check catches bad files up front; this only guards against
            # files that change on disk while training.
            .ignore_errors(log_warning=True)
        )


def _decode_row(path, start, length, label):
    audio, _ = tf.audio.decode_wav(tf.io.read_file(path))
    audio = tf.reduce_mean(audio, axis=-1)
    end = tf.where(length < 0, tf.shape(audio)[0], start + length)
    return audio[start:end], label


def build_splits(
    root: str, task: str = "12_class", test_dir: str | None = None, verify: bool = True
):
    """Lists the examples of each split of a local Speech Commands folder.

    Args:
        root: the extracted dataset folder.
        task: "12_class" (TFDS `speech_commands` labels) or "all_words"/"35_word".
        test_dir: optional extracted `speech_commands_test_set_v0.02` folder, used as
            the test split of the 12-class task (TFDS's test set).
        verify: check every file's WAV header (skips and counts bad files).

    Returns:
        ({"train": tf.data.Dataset, "validation": ..., "test": ...}, class_names, stats),
        datasets unbatched (float32 [time], int32 label), ordered deterministically.

    Raises:
        ValueError: unknown task.
        DataNotFoundError: the folder or a list file does not exist.
    """
    if task not in TASKS:
        raise ValueError(f"Unknown Speech Commands task {task!r}; expected one of {TASKS}.")
    stats = {}
    audio_io.require_path(root, "Speech Commands folder", is_dir=True)
    validation_list = set(_read_list(os.path.join(root, "validation_list.txt")))
    testing_list = set(_read_list(os.path.join(root, "testing_list.txt")))
    words = _word_folders(root)
    if not words:
        raise audio_io.DataNotFoundError(
            f"Speech Commands folder {root!r} has no word folders (e.g. {root}/yes/*.wav)."
        )

    twelve = task == "12_class"
    class_names = TWELVE_CLASS_NAMES if twelve else tuple(words)

    def label_of(word):
        if not twelve:
            return class_names.index(word)
        if word in COMMAND_WORDS:
            return class_names.index(word)
        if word == SILENCE:
            return class_names.index(SILENCE)
        return class_names.index(UNKNOWN)

    splits = {name: _SplitBuilder(name, stats, verify) for name in ("train", "validation", "test")}
    use_test_dir = twelve and test_dir is not None
    for word in words:
        for filename in _list_wavs(os.path.join(root, word)):
            relative = f"{word}/{filename}"
            if relative in validation_list:
                split = "validation"
            elif relative in testing_list:
                if use_test_dir:
                    continue
                split = "test"
            else:
                split = "train"
            splits[split].add_clip(os.path.join(root, word, filename), label_of(word))
    # Listed files that are absent from the word folders.
    present = {f"{w}/{f}" for w in words for f in _list_wavs(os.path.join(root, w))}
    for split, listed in (("validation", validation_list), ("test", testing_list)):
        if split == "test" and use_test_dir:
            continue
        for relative in sorted(listed - present):
            splits[split].add_clip(os.path.join(root, relative), 0)

    if twelve:
        noise_dir = os.path.join(root, BACKGROUND_NOISE)
        if os.path.isdir(noise_dir):
            for filename in _list_wavs(noise_dir):
                split = "validation" if filename in VALIDATION_NOISE_FILES else "train"
                splits[split].add_silence_pieces(
                    os.path.join(noise_dir, filename), class_names.index(SILENCE)
                )
        else:
            logging.warning(
                "Speech Commands folder %s has no %s folder: no _silence_ examples.",
                root,
                BACKGROUND_NOISE,
            )
        if use_test_dir:
            audio_io.require_path(test_dir, "Speech Commands test-set folder", is_dir=True)
            for word in sorted(
                name for name in os.listdir(test_dir) if os.path.isdir(os.path.join(test_dir, name))
            ):
                for filename in _list_wavs(os.path.join(test_dir, word)):
                    splits["test"].add_clip(os.path.join(test_dir, word, filename), label_of(word))

    for split in splits.values():
        bad = stats[f"{split.split}/skipped_undecodable"] + stats[f"{split.split}/missing"]
        if bad:
            logging.warning(
                "Speech Commands %s: %d files skipped (%d missing, %d undecodable).",
                split.split,
                bad,
                stats[f"{split.split}/missing"],
                stats[f"{split.split}/skipped_undecodable"],
            )
    datasets = {name: builder.dataset() for name, builder in splits.items()}
    return datasets, class_names, stats
