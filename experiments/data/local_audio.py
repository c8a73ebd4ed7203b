"""Labelled audio files on disk, decoded once into a cache that every epoch reads.

The folder and CSV datasets (`audio_folder`, `csv_manifest`) list their files as
`LabelledFile`s; `decode_to_cache` then decodes each file once (WAV with the standard
library, FLAC / OGG / 24-bit / float WAV with soundfile), mixes it to mono, resamples it to
the frontend's rate with an anti-aliased polyphase filter (`scipy.signal.resample_poly`)
and writes int16 PCM to one TFRecord file per split. A file that cannot be decoded or holds
no samples is skipped, counted and named in the stats, never an error mid-epoch.

The cache lives in ``cache_dir`` (default ``~/.cache/leaf_keras``) under a key made of the
file list (paths, sizes, modification times, labels, splits) and the sample rate, so a
changed dataset gets a new cache and an unchanged one is never decoded twice.
"""

import dataclasses
import hashlib
import json
import math
import os
import zlib

import numpy as np
import tensorflow as tf
from absl import logging

from experiments.data import audio_io

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
SPLITS = ("train", "validation", "test")
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "leaf_keras")
_MANIFEST = "manifest.json"


@dataclasses.dataclass(frozen=True)
class LabelledFile:
    """One audio file of a dataset: where it is, its label indices and its split."""

    path: str
    labels: tuple
    split: str


def is_audio_file(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith(".")


def check_fractions(validation_fraction: float, test_fraction: float) -> None:
    """Raises ValueError unless both fractions are in [0, 1) and sum below 1."""
    for name, value in (
        ("validation_fraction", validation_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"load_task.{name} must be in [0, 1), got {value!r}.")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            "load_task.validation_fraction + load_task.test_fraction must be < 1, got "
            f"{validation_fraction} + {test_fraction}."
        )


def split_by_name(files, validation_fraction: float, test_fraction: float) -> list:
    """The files of one class with deterministic splits.

    Files are ordered by a hash of their name: the first ``round(n * test_fraction)`` go to
    test, the next ``round(n * validation_fraction)`` to validation (at least one each
    when the class has three files or more and the fraction is not 0), the rest to train.
    Adding a file moves few others.
    """
    # fsencode: the bytes of the name, also for names that are not valid UTF-8.
    ordered = sorted(
        files, key=lambda f: (zlib.crc32(os.fsencode(os.path.basename(f.path))), f.path)
    )
    least = 1 if len(ordered) >= 3 else 0
    test = max(round(len(ordered) * test_fraction), least if test_fraction > 0 else 0)
    validation = max(
        round(len(ordered) * validation_fraction), least if validation_fraction > 0 else 0
    )
    splits = ["test"] * test + ["validation"] * validation
    splits += ["train"] * (len(ordered) - len(splits))
    return [dataclasses.replace(f, split=s) for f, s in zip(ordered, splits)]


def decode(path: str, sample_rate: int) -> np.ndarray:
    """The file as mono int16 [time] at `sample_rate`.

    Raises:
        UndecodableAudioError: naming the file and what is wrong with it (including a
            file without samples, which `audio_io.read_audio` rejects).
    """
    samples, rate = audio_io.read_audio(path)
    if rate != sample_rate:
        from scipy import signal  # pylint: disable=import-outside-toplevel

        divisor = math.gcd(int(rate), int(sample_rate))
        resampled = signal.resample_poly(
            samples.astype(np.float64), sample_rate // divisor, rate // divisor
        )
        samples = np.clip(np.round(resampled), -32768, 32767).astype(np.int16)
    return samples


def _cache_key(files, sample_rate) -> str:
    digest = hashlib.sha256(f"rate={sample_rate}".encode())
    for item in files:
        try:
            status = os.stat(item.path)
            size, modified = status.st_size, status.st_mtime_ns
        except OSError:
            size, modified = -1, -1  # Missing: skipped when decoding.
        row = (item.path, size, modified, item.labels, item.split)
        digest.update(repr(row).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def _example(samples: np.ndarray, labels: tuple) -> bytes:
    feature = {
        "audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[samples.tobytes()])),
        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=list(labels))),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def decode_to_cache(files, sample_rate: int, cache_dir: str | None, what: str):
    """Decodes `files` once into TFRecord files, one per split (reused when unchanged).

    Args:
        files: `LabelledFile`s, in the order their splits should be read.
        sample_rate: output rate in Hz.
        cache_dir: cache root (None = ~/.cache/leaf_keras).
        what: the dataset's name for logs and errors, e.g. the folder path.

    Returns:
        ({split: TFRecord path}, stats) where stats counts examples per split and
        ``skipped_files`` lists {"path", "reason"} of every file left out.
    """
    directory = os.path.join(cache_dir or DEFAULT_CACHE_DIR, _cache_key(files, sample_rate))
    manifest_path = os.path.join(directory, _MANIFEST)
    records = {split: os.path.join(directory, f"{split}.tfrecord") for split in SPLITS}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            return records, json.load(f)["stats"]
    os.makedirs(directory, exist_ok=True)
    stats = {f"{split}/examples": 0 for split in SPLITS}
    stats["skipped_files"] = []
    writers = {split: tf.io.TFRecordWriter(path + ".incomplete") for split, path in records.items()}
    logging.info("Decoding %d files of %s into %s (once).", len(files), what, directory)
    for item in files:
        try:
            if not _is_utf8(item.path):
                # TensorFlow and JSON take UTF-8 strings only; the name is kept escaped.
                raise audio_io.UndecodableAudioError(
                    f"{_printable(item.path)}: the file name is not valid UTF-8; rename it."
                )
            if not os.path.isfile(item.path):
                raise audio_io.UndecodableAudioError(f"{item.path}: file does not exist.")
            samples = decode(item.path, sample_rate)
        except audio_io.UndecodableAudioError as error:
            logging.warning("%s: skipped %s", what, error)
            stats["skipped_files"].append(
                {"path": _printable(item.path), "split": item.split, "reason": str(error)}
            )
            continue
        writers[item.split].write(_example(samples, item.labels))
        stats[f"{item.split}/examples"] += 1
    for split, writer in writers.items():
        writer.close()
        os.replace(records[split] + ".incomplete", records[split])
    stats["skipped"] = len(stats["skipped_files"])
    # Written last: a cache without its manifest is incomplete and is rebuilt.
    with open(manifest_path, "w") as f:
        json.dump({"what": what, "sample_rate": sample_rate, "stats": stats}, f, indent=1)
    return records, stats


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # os.listdir's surrogate escapes of undecodable bytes
        return False
    return True


def _printable(path: str) -> str:
    """`path` with bytes that are not UTF-8 written as \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def check_usable(stats: dict, what: str) -> None:
    """Raises ValueError if a split has no usable clip, before any training starts.

    A folder whose files are all unreadable would otherwise train zero steps and save
    untrained weights as the "best" checkpoint.
    """
    for split in SPLITS:
        if stats.get(f"{split}/examples", 0) > 0:
            continue
        skipped = [f for f in stats.get("skipped_files", []) if f.get("split") == split]
        detail = (
            f"all {len(skipped)} of its files were skipped, e.g. {skipped[0]['reason']}"
            if skipped
            else "it has no files"
        )
        raise ValueError(f"{what}: no usable clip in the {split} split: {detail}")


def read_split(record_path: str, num_classes: int, multi_label: bool) -> tf.data.Dataset:
    """Unbatched (float32 waveform [time], label) pairs of one cached split, in order.

    The label is int32 for single-label data and a float32 multi-hot [num_classes] vector
    for multi-label data.
    """
    spec = {
        "audio": tf.io.FixedLenFeature([], tf.string),
        "labels": tf.io.VarLenFeature(tf.int64),
    }

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        audio = tf.cast(tf.io.decode_raw(example["audio"], tf.int16), tf.float32) / 32768.0
        labels = tf.sparse.to_dense(example["labels"])
        if multi_label:
            hot = tf.reduce_max(tf.one_hot(labels, num_classes, dtype=tf.float32), axis=0)
            return audio, tf.ensure_shape(hot, [num_classes])
        return audio, tf.cast(labels[0], tf.int32)

    return tf.data.TFRecordDataset(record_path).map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def check_classes(class_names, files, what: str) -> None:
    """Raises ValueError unless there are two classes or more and every split has files."""
    if len(class_names) < 2:
        raise ValueError(
            f"{what}: found {len(class_names)} class ({', '.join(class_names) or 'none'}); "
            "a classifier needs at least two."
        )
    for split in SPLITS:
        if not any(item.split == split for item in files):
            raise ValueError(
                f"{what}: the {split} split is empty; add files, or for validation and "
                "test raise load_task.validation_fraction / load_task.test_fraction."
            )
