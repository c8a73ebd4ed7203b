"""AudioSet as a TFDS builder with a manual download (clips you fetched yourself).

AudioSet is published as CSV lists of YouTube segments; the audio has to be
obtained separately. Put the files in `manual_dir` like this::

    <manual_dir>/class_labels_indices.csv        index,mid,display_name (527 rows + header)
    <manual_dir>/balanced_train_segments.csv     # 3 comment lines, then
    <manual_dir>/eval_segments.csv               #   YTID, start_seconds, end_seconds, "mid1,mid2"
    <manual_dir>/unbalanced_train_segments.csv   (only for the "full" config)
    <manual_dir>/audio/<YTID>.wav                one clip per YTID, already cut to the
                                                 segment (.wav, .flac or .ogg)

Clips should be 16 kHz; integer multiples (32/48 kHz) and 8 kHz are resampled,
other rates (e.g. 44.1 kHz) are skipped and counted. Stereo is averaged to mono.
Segments whose clip is missing or cannot be decoded are skipped, logged and
counted; the counters are saved in the dataset's metadata (`info.metadata["stats"]`)
and reported by `load_task` in `AudioTask.stats`.

Configs: "balanced" (train = balanced_train_segments, ~22k clips) and "full"
(train = balanced + unbalanced, ~2M clips). Both have "train" and "eval" splits.
Labels are stored as indices into class_labels_indices.csv; `load_task` turns them
into multi-hot float vectors over all classes of that file (527 for real AudioSet).
"""

import csv
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from experiments.data import audio_io
from experiments.data import local_audio
from experiments.data import resample as resample_lib
from experiments.data import tfds_tasks

SAMPLE_RATE = 16000
CLASS_LABELS_CSV = "class_labels_indices.csv"
AUDIO_EXTENSIONS = local_audio.AUDIO_EXTENSIONS


def read_class_labels(path: str) -> tuple:
    """Reads class_labels_indices.csv → (mids, display_names), ordered by index."""
    audio_io.require_path(path, "AudioSet class list")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"index", "mid", "display_name"} <= set(rows[0]):
        raise ValueError(f"{path}: expected a header 'index,mid,display_name'.")
    rows.sort(key=lambda row: int(row["index"]))
    if [int(row["index"]) for row in rows] != list(range(len(rows))):
        raise ValueError(f"{path}: class indices must be 0..{len(rows) - 1} without gaps.")
    return tuple(row["mid"] for row in rows), tuple(row["display_name"] for row in rows)


def read_segments(path: str) -> list:
    """Reads a segments CSV → [(ytid, start_seconds, end_seconds, [mids])].

    Lines starting with '#' are comments; the label field is quoted and
    comma-separated, e.g. `--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"`.
    """
    audio_io.require_path(path, "AudioSet segments list")
    segments = []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = csv.reader(
            (line for line in handle if not line.lstrip().startswith("#")), skipinitialspace=True
        )
        for line_number, row in enumerate(rows, start=1):
            if not row:
                continue
            if len(row) != 4:
                raise ValueError(
                    f"{path}: row {line_number} has {len(row)} fields, expected 4 "
                    f"(YTID, start_seconds, end_seconds, labels): {row}"
                )
            ytid, start, end, labels = row
            mids = [mid.strip() for mid in labels.split(",") if mid.strip()]
            segments.append((ytid.strip(), float(start), float(end), mids))
    return segments


def find_clip(audio_dir: str, ytid: str) -> str | None:
    for extension in AUDIO_EXTENSIONS:
        path = os.path.join(audio_dir, ytid + extension)
        if os.path.isfile(path):
            return path
    return None


@dataclasses.dataclass
class AudioSetConfig(tfds.core.BuilderConfig):
    """Which segment lists make up the train split."""

    train_csvs: tuple = ("balanced_train_segments.csv",)


class AudioSet(tfds_tasks.PackageBuilder, tfds.core.GeneratorBasedBuilder):
    """AudioSet multi-label sound event classification from a local copy."""

    name = "audioset"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = [
        AudioSetConfig(name="balanced", description="Train on balanced_train_segments."),
        AudioSetConfig(
            name="full",
            description="Train on balanced + unbalanced segments.",
            train_csvs=("balanced_train_segments.csv", "unbalanced_train_segments.csv"),
        ),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "audio": tfds.features.Audio(
                        shape=(None,), dtype=np.int16, sample_rate=SAMPLE_RATE
                    ),
                    "labels": tfds.features.Tensor(shape=(None,), dtype=np.int64),
                    "ytid": tfds.features.Text(),
                    "start_seconds": np.float32,
                }
            ),
            metadata=tfds.core.MetadataDict(),
            homepage="https://research.google.com/audioset/",
        )

    def _split_generators(self, dl_manager):
        manual_dir = os.fspath(dl_manager.manual_dir)
        audio_io.require_path(manual_dir, "AudioSet manual_dir", is_dir=True)
        mids, names = read_class_labels(os.path.join(manual_dir, CLASS_LABELS_CSV))
        audio_dir = audio_io.require_path(
            os.path.join(manual_dir, "audio"), "AudioSet clip folder", is_dir=True
        )
        self.info.metadata["class_mids"] = list(mids)
        self.info.metadata["class_names"] = list(names)
        self.info.metadata["stats"] = {}
        split_csvs = {"train": self.builder_config.train_csvs, "eval": ("eval_segments.csv",)}
        segments = {
            split: [
                segment
                for filename in csvs
                for segment in read_segments(os.path.join(manual_dir, filename))
            ]
            for split, csvs in split_csvs.items()
        }
        index_of = {mid: index for index, mid in enumerate(mids)}
        return {
            split: self._generate_examples(split, rows, audio_dir, index_of)
            for split, rows in segments.items()
        }

    def _generate_examples(self, split, segments, audio_dir, index_of):
        stats = self.info.metadata["stats"]
        for key in ("examples", "missing", "skipped_undecodable", "unknown_labels"):
            stats[f"{split}/{key}"] = 0
        seen = set()
        for ytid, start, _, label_mids in segments:
            key = f"{ytid}_{start:.3f}"
            if key in seen:
                continue
            seen.add(key)
            path = find_clip(audio_dir, ytid)
            if path is None:
                stats[f"{split}/missing"] += 1
                logging.warning(
                    "AudioSet %s: no clip for %s in %s; skipped.", split, ytid, audio_dir
                )
                continue
            try:
                samples, rate = audio_io.read_audio(path)
                samples = resample_lib.resample_numpy(samples.astype(np.float64), rate, SAMPLE_RATE)
            except (audio_io.UndecodableAudioError, ValueError) as error:
                stats[f"{split}/skipped_undecodable"] += 1
                logging.warning("AudioSet %s: skipped %s", split, error)
                continue
            samples = np.clip(np.round(samples), -32768, 32767).astype(np.int16)
            labels = [index_of[mid] for mid in label_mids if mid in index_of]
            stats[f"{split}/unknown_labels"] += len(label_mids) - len(labels)
            stats[f"{split}/examples"] += 1
            yield (
                key,
                {
                    "audio": samples,
                    "labels": np.array(sorted(labels), np.int64),
                    "ytid": ytid,
                    "start_seconds": start,
                },
            )
        logging.info(
            "AudioSet %s: %s", split, {k: v for k, v in stats.items() if k.startswith(split)}
        )
