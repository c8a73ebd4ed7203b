"""Input pipelines for the leaf_keras experiments: `load_task(...)` → `AudioTask`.

Task names (`dataset` argument of `load_task`):

* ``"synthetic_commands"`` (default), ``"synthetic_commands/tiny"``: generated
  offline into `data_dir` (TFDS default ~/tensorflow_datasets when None).
* ``"speech_commands_folder"``: a local extracted Speech Commands folder given as
  `data_dir`; keyword arguments `task="12_class"|"all_words"|"35_word"`,
  `test_dir=None`, `verify=True` (see `speech_commands_folder`).
* ``"audioset"``, ``"audioset/balanced"``, ``"audioset/full"``: a local AudioSet copy
  given as keyword `manual_dir` (layout in `audioset`), prepared into `data_dir`.
  Multi-label; validation and test are both the eval split.
* TFDS datasets (prepared in `data_dir`, downloaded by TFDS if allowed):
  ``"speech_commands"``, ``"crema_d"``, ``"voxforge"``, ``"voxceleb"``,
  ``"nsynth_pitch"``, ``"nsynth_instrument"``, ``"spoken_digit"``,
  ``"librispeech_speakers"``, or ``"tfds:<name>"`` for any TFDS dataset with
  `audio` and ClassLabel `label` features and train/validation/test splits.

Preprocessing (see `preprocessing`): int PCM / 32768, random crop/pad to
`clip_seconds` and loudness normalization for training; whole clips, padded to at
least `clip_seconds`, batched by equal length, for validation and test.
"""

import dataclasses

import gin
import tensorflow as tf
import tensorflow_datasets as tfds

# Importing `audioset` and `synthetic_commands` registers their TFDS builders.
from experiments.data import audioset
from experiments.data import preprocessing
from experiments.data import speech_commands_folder
from experiments.data import synthetic_commands
from experiments.data import tfds_tasks

SAMPLE_RATE = 16000
FOLDER_TASK_KWARGS = ("task", "test_dir", "verify")


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


def _validate(dataset, batch_size, eval_batch_size, clip_seconds, shuffle_buffer):
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(f"dataset must be a non-empty task name, got {dataset!r}.")
    for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if not clip_seconds or clip_seconds * SAMPLE_RATE < 401:
        raise ValueError(f"clip_seconds must be at least one 25 ms frontend window "
                         f"(0.025 s), got {clip_seconds!r}.")
    if shuffle_buffer < 0:
        raise ValueError(f"shuffle_buffer must be >= 0, got {shuffle_buffer!r}.")


def _multi_hot(num_classes):
    def convert(example):
        labels = tf.one_hot(example["labels"], num_classes, dtype=tf.float32)
        audio = preprocessing.to_float_waveform(example["audio"])
        return audio, tf.minimum(tf.reduce_sum(labels, axis=0), 1.0)
    return convert


def _load_audioset(config_name, data_dir, manual_dir):
    builder = tfds.builder(f"audioset/{config_name}", data_dir=data_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    builder.download_and_prepare(download_config=config)
    class_names = tuple(builder.info.metadata["class_names"])
    stats = dict(builder.info.metadata.get("stats", {}))
    convert = _multi_hot(len(class_names))
    train = builder.as_dataset(split="train", shuffle_files=True,
                               read_config=tfds.ReadConfig(shuffle_seed=0))
    evaluation = builder.as_dataset(split="eval", shuffle_files=False)
    splits = {"train": train.map(convert, num_parallel_calls=tf.data.AUTOTUNE),
              "validation": evaluation.map(convert, num_parallel_calls=tf.data.AUTOTUNE)}
    splits["test"] = splits["validation"]
    return splits, class_names, stats


def _load_synthetic(name, data_dir):
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare()
    class_names = tuple(builder.info.features["label"].names)

    def convert(example):
        return (preprocessing.to_float_waveform(example["audio"]),
                tf.cast(example["label"], tf.int32))

    splits = {}
    for split in ("train", "validation", "test"):
        read_config = tfds.ReadConfig(shuffle_seed=0) if split == "train" else None
        ds = builder.as_dataset(split=split, shuffle_files=(split == "train"),
                                read_config=read_config)
        splits[split] = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    return splits, class_names


@gin.configurable
def load_task(dataset: str = "synthetic_commands", data_dir: str | None = None,
              batch_size: int = 64, clip_seconds: float = 1.0,
              loudness_normalization: bool = True, shuffle_buffer: int = 10000,
              seed: int = 0, eval_batch_size: int = 64, **kwargs) -> AudioTask:
    """Loads a classification task as batched tf.data pipelines.

    Args:
        dataset: task name (see the module docstring).
        data_dir: TFDS data directory, or the dataset folder for
            "speech_commands_folder". None = TFDS default (~/tensorflow_datasets).
        batch_size: training batch size.
        clip_seconds: training crop length; evaluation clips shorter than this are
            padded to it.
        loudness_normalization: normalize each clip to 15 dB (max gain 30 dB).
        shuffle_buffer: training shuffle buffer (0 disables shuffling).
        seed: seed for shuffling and random crops.
        eval_batch_size: largest validation/test batch size.
        **kwargs: task options (gin-bindable; None means unset).
            "speech_commands_folder": `task` ("12_class", "all_words" or
            "35_word"), `test_dir`, `verify`. AudioSet and TFDS datasets:
            `manual_dir`. TFDS datasets: `download` (default True). Any other
            option raises ValueError.

    Returns:
        An AudioTask.

    Raises:
        ValueError: unknown dataset name, bad argument or unknown keyword option.
        DataNotFoundError (a FileNotFoundError and ValueError): missing folder/file.
    """
    _validate(dataset, batch_size, eval_batch_size, clip_seconds, shuffle_buffer)
    clip_length = int(round(clip_seconds * SAMPLE_RATE))
    stats = {}
    multi_label = False

    # Options bound to None (e.g. a shared gin file's `load_task.manual_dir = None`)
    # count as unset.
    kwargs = {key: value for key, value in kwargs.items() if value is not None}

    def reject_unknown(allowed):
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise ValueError(f"load_task({dataset!r}) got unknown options {unknown}; "
                             f"allowed: {sorted(allowed)}.")

    if dataset == "speech_commands_folder":
        reject_unknown(FOLDER_TASK_KWARGS)
        if data_dir is None:
            raise ValueError("speech_commands_folder needs data_dir = the extracted folder.")
        splits, class_names, stats = speech_commands_folder.build_splits(data_dir, **kwargs)
    elif dataset in ("audioset", "audioset/balanced", "audioset/full"):
        reject_unknown(("manual_dir",))
        config_name = "balanced" if dataset == "audioset" else dataset.split("/")[1]
        splits, class_names, stats = _load_audioset(config_name, data_dir,
                                                    kwargs.get("manual_dir"))
        multi_label = True
    elif dataset in ("synthetic_commands", "synthetic_commands/default",
                     "synthetic_commands/tiny"):
        reject_unknown(())
        splits, class_names = _load_synthetic(dataset, data_dir)
    else:
        spec = tfds_tasks.resolve_spec(dataset)
        if spec is None:
            raise ValueError(
                f"Unknown dataset {dataset!r}; expected synthetic_commands, "
                f"speech_commands_folder, audioset, one of {sorted(tfds_tasks.TFDS_TASKS)} "
                "or 'tfds:<name>'.")
        reject_unknown(("manual_dir", "download"))
        splits, class_names = tfds_tasks.load_splits(
            spec, data_dir, SAMPLE_RATE, manual_dir=kwargs.get("manual_dir"),
            download=kwargs.get("download", True))

    return AudioTask(
        name=dataset,
        train=preprocessing.make_train_pipeline(
            splits["train"], batch_size, clip_length, loudness_normalization,
            shuffle_buffer, seed),
        validation=preprocessing.make_eval_pipeline(
            splits["validation"], eval_batch_size, clip_length, loudness_normalization),
        test=preprocessing.make_eval_pipeline(
            splits["test"], eval_batch_size, clip_length, loudness_normalization),
        num_classes=len(class_names),
        multi_label=multi_label,
        sample_rate=SAMPLE_RATE,
        class_names=tuple(class_names),
        stats=stats,
    )


__all__ = ["AudioTask", "load_task", "audioset", "preprocessing", "speech_commands_folder",
           "synthetic_commands", "tfds_tasks"]
