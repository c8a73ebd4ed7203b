"""TFDS audio classification datasets known to `load_task`, by task name.

Each entry says which TFDS dataset and splits a task reads, which (possibly nested,
"a/b") feature is the label and which is the audio. Any other TFDS dataset with an
`audio` and a `label` feature can be loaded as ``"tfds:<name>"``.

The TFDS steps every TFDS-backed task shares (preparing a builder, reading its splits,
the `code_path` of this package's own builders) are here too.
"""

import dataclasses
import inspect

import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

from experiments.data import audio_io
from experiments.data import preprocessing
from experiments.data import resample as resample_lib


@dataclasses.dataclass(frozen=True)
class TfdsTaskSpec:
    """How to read one classification task from a TFDS dataset.

    Attributes:
        tfds_name: TFDS builder name, optionally with config ("nsynth/full").
        splits: TFDS split names (slicing allowed) for train, validation, test.
        label_key: label feature; "/" separates nested features.
        audio_key: audio feature.
        sample_rate: sample rate of the stored audio.
        label_vocabulary: True if labels are raw ids (e.g. LibriSpeech speaker ids)
            mapped to 0..N-1 in sorted order of the ids seen in the train split.
        manual: True if TFDS needs a manual download (given via `manual_dir`).
    """

    tfds_name: str
    splits: tuple = ("train", "validation", "test")
    label_key: str = "label"
    audio_key: str = "audio"
    sample_rate: int = 16000
    label_vocabulary: bool = False
    manual: bool = False


# load_task's name for "any TFDS dataset": "tfds:<name>".
GENERIC_PREFIX = "tfds:"

TFDS_TASKS = {
    # Keyword spotting, 12 classes (10 words, _silence_, _unknown_).
    "speech_commands": TfdsTaskSpec("speech_commands"),
    # Emotion recognition, 6 classes.
    "crema_d": TfdsTaskSpec("crema_d"),
    # Language identification, 6 languages.
    "voxforge": TfdsTaskSpec("voxforge"),
    # Speaker identification, 1251 speakers (manual download).
    "voxceleb": TfdsTaskSpec("voxceleb", manual=True),
    # Musical pitch (128 MIDI pitches) and instrument family (11 classes).
    "nsynth_pitch": TfdsTaskSpec("nsynth", ("train", "valid", "test"), label_key="pitch"),
    "nsynth_instrument": TfdsTaskSpec(
        "nsynth", ("train", "valid", "test"), label_key="instrument/family"
    ),
    # Spoken digits, 10 classes; 8 kHz (resampled to 16 kHz), one split sliced 80/10/10.
    "spoken_digit": TfdsTaskSpec(
        "spoken_digit", ("train[:80%]", "train[80%:90%]", "train[90%:]"), sample_rate=8000
    ),
    # Speaker identification on LibriSpeech train-clean-100 (251 speakers), utterances
    # split 80/10/10 in TFDS order.
    "librispeech_speakers": TfdsTaskSpec(
        "librispeech",
        ("train_clean100[:80%]", "train_clean100[80%:90%]", "train_clean100[90%:]"),
        label_key="speaker_id",
        audio_key="speech",
        label_vocabulary=True,
    ),
}


class PackageBuilder:
    """Mixin of this package's TFDS builders: their `code_path` is their module's file.

    TFDS's own lookup of a builder's source file imports the `importlib_resources`
    backport, which is not a TFDS install dependency.
    """

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return epath.Path(inspect.getfile(cls))


def _get_nested(tree, key: str):
    """``tree["a"]["b"]`` for ``key = "a/b"`` (examples and feature dicts alike)."""
    for part in key.split("/"):
        tree = tree[part]
    return tree


def resolve_spec(dataset: str) -> TfdsTaskSpec:
    """The spec of a TFDS_TASKS name, or the default spec of a "tfds:<name>" one."""
    if dataset.startswith(GENERIC_PREFIX):
        return TfdsTaskSpec(dataset[len(GENERIC_PREFIX) :])
    return TFDS_TASKS[dataset]


def prepare(
    name: str,
    data_dir: str | None,
    manual_dir: str | None = None,
    download: bool = False,
    how_to_get: str | None = None,
):
    """The TFDS builder `name`, prepared in `data_dir`.

    A builder that is not prepared yet is prepared only when asked: with `download`, or
    from the local files of `manual_dir`. A dataset of gigabytes is never fetched because a
    config named it.

    Args:
        name: TFDS builder name ("nsynth/full").
        data_dir: TFDS data directory (None = TFDS default).
        manual_dir: folder of manually downloaded files, for builders that need one.
        download: let TFDS download and prepare the dataset.
        how_to_get: what the error tells a user to do (default: the `download` binding).

    Raises:
        DataNotFoundError: the dataset is not prepared and neither `download` nor
            `manual_dir` says where to get it.
    """
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    if not (download or manual_dir):
        raise audio_io.DataNotFoundError(_not_prepared_message(builder, name, data_dir, how_to_get))
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    builder.download_and_prepare(download_config=config)
    return builder


def _not_prepared_message(builder, name, data_dir, how_to_get):
    if how_to_get is None:
        try:
            size = builder.info.download_size
        except Exception:  # pylint: disable=broad-except
            size = None  # Some builders only know their size after preparing.
        size = f" ({size} to download)" if size else ""
        how_to_get = (
            f'download and prepare it{size} with --gin_bindings="load_task.download = True"'
        )
    where = "load_task.data_dir" + ("" if data_dir else " (now None: ~/tensorflow_datasets)")
    return (
        f"TFDS dataset {name!r} is not prepared: looked for {builder.data_dir}. To use it, "
        f"{how_to_get}, or set {where} to a TFDS data directory that holds it."
    )


def read_splits(builder, splits: dict, convert) -> dict:
    """Maps `convert` over the builder's splits, {task split: TFDS split}.

    Only "train" reads its files in a shuffled (seeded) order; the others are read in
    order, so evaluation is deterministic.
    """
    datasets = {}
    for name, split in splits.items():
        train = name == "train"
        read_config = tfds.ReadConfig(shuffle_seed=0) if train else None
        ds = builder.as_dataset(split=split, shuffle_files=train, read_config=read_config)
        datasets[name] = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    return datasets


def load_splits(
    spec: TfdsTaskSpec,
    data_dir: str | None,
    target_rate: int,
    manual_dir: str | None = None,
    download: bool = False,
):
    """Reads a TFDS task's splits as unbatched (float32 [time], int32 label) datasets.

    Args:
        spec: the task.
        data_dir: TFDS data directory (None = TFDS default).
        target_rate: output sample rate; audio is resampled (integer ratios only).
        manual_dir: manual download folder for datasets that need one.
        download: let TFDS download and prepare the dataset if it is not prepared.
            Without it an unprepared dataset raises DataNotFoundError.

    Returns:
        (datasets dict with "train"/"validation"/"test", class_names tuple).
    """
    builder = prepare(spec.tfds_name, data_dir, manual_dir, download)
    label_feature = _get_nested(builder.info.features, spec.label_key)
    if isinstance(label_feature, tfds.features.ClassLabel):
        class_names = tuple(label_feature.names)
        lookup = None
    elif spec.label_vocabulary:
        ids = builder.as_dataset(
            split=spec.splits[0], decoders=_skip_audio(spec), shuffle_files=False
        )
        vocabulary = sorted({int(_get_nested(x, spec.label_key)) for x in ids.as_numpy_iterator()})
        class_names = tuple(str(v) for v in vocabulary)
        lookup = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocabulary, tf.int64), tf.range(len(vocabulary), dtype=tf.int64)
            ),
            -1,
        )
    else:
        raise ValueError(
            f"TFDS dataset {spec.tfds_name!r}: label feature {spec.label_key!r} is "
            f"{type(label_feature).__name__}, not a ClassLabel."
        )

    def _convert(example):
        audio = preprocessing.to_float_waveform(_get_nested(example, spec.audio_key))
        audio = resample_lib.resample(audio, spec.sample_rate, target_rate)
        label = _get_nested(example, spec.label_key)
        if lookup is not None:
            label = lookup.lookup(tf.cast(label, tf.int64))
        return audio, tf.cast(label, tf.int32)

    datasets = read_splits(
        builder, dict(zip(("train", "validation", "test"), spec.splits)), _convert
    )
    if lookup is not None:
        # Speakers never seen in training cannot be classified; drop them.
        datasets = {
            name: ds.filter(lambda audio, label: label >= 0) for name, ds in datasets.items()
        }
    return datasets, class_names


def _skip_audio(spec: TfdsTaskSpec) -> dict:
    return {spec.audio_key: tfds.decode.SkipDecoding()}
