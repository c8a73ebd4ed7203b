"""Input pipelines for the leaf_keras experiments: `load_task(...)` → `AudioTask`.

Task names (`dataset` argument of `load_task`):

* ``"synthetic_commands"`` (default), ``"synthetic_commands/tiny"``: generated
  offline into `data_dir` (TFDS default ~/tensorflow_datasets when None);
  ``"synthetic_commands/family"`` (``/family_tiny``): the same clips with a coarser
  label (tone, noise, harmonic, clicks), a second task for multi-task training.
* ``"audio_folder"``: `data_dir` holds one sub-folder of audio files per class (or
  ``train/``, ``validation/``, ``test/`` folders of them); options
  `validation_fraction`, `test_fraction` (0.1 each), `cache_dir` (see `audio_folder`).
* ``"csv"``: `data_dir` is a CSV of ``path,label[,split]`` rows (``a;b`` labels make
  the task multi-label); same options (see `csv_manifest`).
* ``"speech_commands_folder"``: a local extracted Speech Commands folder given as
  `data_dir`; keyword arguments `task="12_class"|"all_words"|"35_word"`,
  `test_dir=None`, `verify=True` (see `speech_commands_folder`).
* ``"audioset"``, ``"audioset/balanced"``, ``"audioset/full"``: a local AudioSet copy
  given as keyword `manual_dir` (layout in `audioset`), prepared into `data_dir`.
  Multi-label; validation and test are both the eval split.
* TFDS datasets, read from `data_dir`; one that is not there yet is downloaded and
  prepared only with the option `download=True` (else DataNotFoundError says so):
  ``"speech_commands"``, ``"crema_d"``, ``"voxforge"``, ``"voxceleb"``,
  ``"nsynth_pitch"``, ``"nsynth_instrument"``, ``"spoken_digit"``,
  ``"librispeech_speakers"``, or ``"tfds:<name>"`` for any TFDS dataset with
  `audio` and ClassLabel `label` features and train/validation/test splits.

`LOADERS` maps every name to its loader; all loaders return an `AudioTask`.

Preprocessing (see `preprocessing`): int PCM / 32768, random crop/pad to
`clip_seconds` and loudness normalization for training; whole clips, padded to at
least `clip_seconds`, batched by equal length, for validation and test.
"""

import dataclasses
import inspect

import tensorflow as tf

import gin

# Importing `audioset` and `synthetic_commands` registers their TFDS builders.
from experiments.data import audio_folder
from experiments.data import audioset
from experiments.data import csv_manifest
from experiments.data import local_audio
from experiments.data import preprocessing
from experiments.data import speech_commands_folder
from experiments.data import synthetic_commands
from experiments.data import tfds_tasks

SAMPLE_RATE = 16000


@dataclasses.dataclass
class AudioTask:
    """A classification task's batched datasets and what a model needs to know about it.

    Attributes:
        name: the `dataset` name it was loaded with.
        train: shuffled, randomly cropped batches (float32 waveforms [B, T], labels);
            one epoch per iteration, reshuffled every epoch.
        validation: deterministic batches of whole clips (T varies across batches).
        test: deterministic batches of whole clips.
        num_classes: number of classes.
        multi_label: True → labels are float32 multi-hot [B, C] (use a sigmoid loss);
            False → labels are int32 [B].
        sample_rate: waveform sample rate in Hz (16000 for every built-in task).
        class_names: class names, in label order.
        stats: counters from loading, e.g. {"train/skipped_undecodable": 2}.
        eval_preprocessing: what evaluation does to each clip, as keyword arguments of
            `preprocessing.serving_preprocessing` (the exports apply it too).
    """

    name: str
    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    num_classes: int
    multi_label: bool
    sample_rate: int
    class_names: tuple
    stats: dict
    eval_preprocessing: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Pipelines:
    """How `load_task` batches every task's splits (its arguments, validated)."""

    batch_size: int
    eval_batch_size: int
    clip_length: int
    loudness_normalization: bool
    shuffle_buffer: int
    seed: int

    def task(self, name, splits, class_names, multi_label=False, stats=None) -> AudioTask:
        """The AudioTask of unbatched {"train", "validation", "test"} datasets."""

        def evaluation(dataset):
            return preprocessing.with_known_cardinality(
                preprocessing.make_eval_pipeline(
                    dataset, self.eval_batch_size, self.clip_length, self.loudness_normalization
                )
            )

        return AudioTask(
            name=name,
            train=preprocessing.make_train_pipeline(
                preprocessing.with_known_cardinality(splits["train"]),
                self.batch_size,
                self.clip_length,
                self.loudness_normalization,
                self.shuffle_buffer,
                self.seed,
            ),
            validation=evaluation(splits["validation"]),
            test=evaluation(splits["test"]),
            num_classes=len(class_names),
            multi_label=multi_label,
            sample_rate=SAMPLE_RATE,
            class_names=tuple(class_names),
            stats=stats or {},
            eval_preprocessing={
                "min_length": self.clip_length,
                "loudness_normalize": self.loudness_normalization,
            },
        )


def _validate(dataset, batch_size, eval_batch_size, clip_seconds, shuffle_buffer):
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(f"dataset must be a non-empty task name, got {dataset!r}.")
    for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if not clip_seconds or clip_seconds * SAMPLE_RATE < 401:
        raise ValueError(
            f"clip_seconds must be at least one 25 ms frontend window "
            f"(0.025 s), got {clip_seconds!r}."
        )
    if shuffle_buffer < 0:
        raise ValueError(f"shuffle_buffer must be >= 0, got {shuffle_buffer!r}.")


# Loaders: `loader(dataset, data_dir, pipelines, **options) -> AudioTask`. Their
# keyword-only parameters are the options `load_task` accepts for their task names.


def _load_synthetic_commands(dataset, data_dir, pipelines):
    # A TFDS task whose builder generates the data locally: always prepared, no options.
    splits, class_names = tfds_tasks.load_splits(
        tfds_tasks.TfdsTaskSpec(dataset), data_dir, SAMPLE_RATE, download=True
    )
    return pipelines.task(dataset, splits, class_names)


def _load_speech_commands_folder(
    dataset, data_dir, pipelines, *, task="12_class", test_dir=None, verify=True
):
    if data_dir is None:
        raise ValueError("speech_commands_folder needs data_dir = the extracted folder.")
    splits, class_names, stats = speech_commands_folder.build_splits(
        data_dir, task=task, test_dir=test_dir, verify=verify
    )
    return pipelines.task(dataset, splits, class_names, stats=stats)


def _local_task(dataset, files, class_names, multi_label, what, pipelines, cache_dir):
    """The task of labelled local files, decoded once into `cache_dir`."""
    records, stats = local_audio.decode_to_cache(files, SAMPLE_RATE, cache_dir, what)
    local_audio.check_usable(stats, what)
    splits = {
        split: local_audio.read_split(path, len(class_names), multi_label)
        for split, path in records.items()
    }
    return pipelines.task(dataset, splits, class_names, multi_label=multi_label, stats=stats)


def _load_audio_folder(
    dataset, data_dir, pipelines, *, validation_fraction=0.1, test_fraction=0.1, cache_dir=None
):
    if data_dir is None:
        raise ValueError("audio_folder needs load_task.data_dir = the folder of class folders.")
    files, class_names = audio_folder.list_files(data_dir, validation_fraction, test_fraction)
    what = f"audio_folder {data_dir}"
    return _local_task(dataset, files, class_names, False, what, pipelines, cache_dir)


def _load_csv(
    dataset, data_dir, pipelines, *, validation_fraction=0.1, test_fraction=0.1, cache_dir=None
):
    if data_dir is None:
        raise ValueError("csv needs load_task.data_dir = the CSV file (path,label[,split]).")
    files, class_names, multi_label = csv_manifest.list_files(
        data_dir, validation_fraction, test_fraction
    )
    what = f"CSV {data_dir}"
    return _local_task(dataset, files, class_names, multi_label, what, pipelines, cache_dir)


def _multi_hot(num_classes):
    def convert(example):
        labels = tf.one_hot(example["labels"], num_classes, dtype=tf.float32)
        audio = preprocessing.to_float_waveform(example["audio"])
        return audio, tf.minimum(tf.reduce_sum(labels, axis=0), 1.0)

    return convert


def _load_audioset(dataset, data_dir, pipelines, *, manual_dir=None):
    config_name = "balanced" if dataset == "audioset" else dataset.split("/")[1]
    builder = tfds_tasks.prepare(
        f"audioset/{config_name}",
        data_dir,
        manual_dir,
        how_to_get="set load_task.manual_dir to a local AudioSet copy (layout in "
        "experiments/data/audioset.py)",
    )
    class_names = tuple(builder.info.metadata["class_names"])
    stats = dict(builder.info.metadata.get("stats", {}))
    # AudioSet has no separate test split: validation and test are both "eval".
    splits = tfds_tasks.read_splits(
        builder, {"train": "train", "validation": "eval"}, _multi_hot(len(class_names))
    )
    splits["test"] = splits["validation"]
    return pipelines.task(dataset, splits, class_names, multi_label=True, stats=stats)


def _load_tfds(dataset, data_dir, pipelines, *, manual_dir=None, download=False):
    splits, class_names = tfds_tasks.load_splits(
        tfds_tasks.resolve_spec(dataset),
        data_dir,
        SAMPLE_RATE,
        manual_dir=manual_dir,
        download=download,
    )
    return pipelines.task(dataset, splits, class_names)


# The key of every "tfds:<name>" task.
GENERIC_TFDS = tfds_tasks.GENERIC_PREFIX + "<name>"

LOADERS = {
    "synthetic_commands": _load_synthetic_commands,
    "synthetic_commands/default": _load_synthetic_commands,
    "synthetic_commands/tiny": _load_synthetic_commands,
    "synthetic_commands/family": _load_synthetic_commands,
    "synthetic_commands/family_tiny": _load_synthetic_commands,
    "audio_folder": _load_audio_folder,
    "csv": _load_csv,
    "speech_commands_folder": _load_speech_commands_folder,
    "audioset": _load_audioset,
    "audioset/balanced": _load_audioset,
    "audioset/full": _load_audioset,
    **{name: _load_tfds for name in tfds_tasks.TFDS_TASKS},
    GENERIC_TFDS: _load_tfds,
}


def _loader(dataset):
    """The registered loader of a task name, or ValueError listing the names."""
    key = GENERIC_TFDS if dataset.startswith(tfds_tasks.GENERIC_PREFIX) else dataset
    if key not in LOADERS:
        raise ValueError(f"Unknown dataset {dataset!r}; registered: {', '.join(LOADERS)}.")
    return LOADERS[key]


def _options(loader):
    return tuple(
        name
        for name, parameter in inspect.signature(loader).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    )


@gin.configurable
def load_task(
    dataset: str = "synthetic_commands",
    data_dir: str | None = None,
    batch_size: int = 64,
    clip_seconds: float = 1.0,
    loudness_normalization: bool = True,
    shuffle_buffer: int = 10000,
    seed: int = 0,
    eval_batch_size: int = 64,
    **kwargs,
) -> AudioTask:
    """Loads a classification task as batched tf.data pipelines.

    Args:
        dataset: task name (see the module docstring and `LOADERS`).
        data_dir: TFDS data directory, the dataset folder for "audio_folder" and
            "speech_commands_folder", or the CSV file for "csv". None = TFDS default
            (~/tensorflow_datasets).
        batch_size: training batch size.
        clip_seconds: training crop length; evaluation clips shorter than this are
            padded to it.
        loudness_normalization: normalize each clip to 15 dB (max gain 30 dB).
        shuffle_buffer: training shuffle buffer (0 disables shuffling).
        seed: seed for shuffling and random crops.
        eval_batch_size: largest validation/test batch size.
        **kwargs: task options (gin-bindable; None means unset).
            "audio_folder" and "csv": `validation_fraction`, `test_fraction`,
            `cache_dir`. "speech_commands_folder": `task` ("12_class", "all_words" or
            "35_word"), `test_dir`, `verify`. AudioSet and TFDS datasets:
            `manual_dir`. TFDS datasets: `download` (default False: a dataset not
            prepared in `data_dir` raises DataNotFoundError). Any other
            option raises ValueError.

    Returns:
        An AudioTask.

    Raises:
        ValueError: unknown dataset name, bad argument or unknown keyword option.
        DataNotFoundError (a FileNotFoundError and ValueError): missing folder/file.
    """
    _validate(dataset, batch_size, eval_batch_size, clip_seconds, shuffle_buffer)
    # Options bound to None (e.g. a shared gin file's `load_task.manual_dir = None`)
    # count as unset.
    options = {key: value for key, value in kwargs.items() if value is not None}
    loader = _loader(dataset)
    allowed = _options(loader)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"load_task({dataset!r}) got unknown options {unknown}; allowed: {sorted(allowed)}."
        )
    pipelines = Pipelines(
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        clip_length=int(round(clip_seconds * SAMPLE_RATE)),
        loudness_normalization=loudness_normalization,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
    )
    return loader(dataset, data_dir, pipelines, **options)


__all__ = [
    "AudioTask",
    "LOADERS",
    "load_task",
    "audio_folder",
    "audioset",
    "csv_manifest",
    "local_audio",
    "preprocessing",
    "speech_commands_folder",
    "synthetic_commands",
    "tfds_tasks",
]
