"""Evaluates a trained classifier on the test split and writes ``metrics.json``."""

import functools
import json
import math
import os

import numpy as np
from absl import logging

import gin
from experiments import checkpointing
from experiments import metrics as metrics_lib

METRICS_FILE = "metrics.json"


def _jsonable(value):
    """Converts NumPy scalars/arrays (e.g. in dataset stats) to JSON types; inf → string."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def window_starts(num_samples, window, hop):
    """Start samples of the `window`-long windows, `hop` apart, that cover a clip.

    The last window ends at the clip's end (it may overlap its predecessor more than the
    others), so every sample is scored and no window is zero padding. A clip no longer
    than a window is one window: the whole clip.
    """
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] != num_samples - window:
        starts.append(num_samples - window)
    return starts


def _windowed_logits(model, waveforms, window, hop):
    """Per-clip mean of the logits of the clip's windows (the paper's AudioSet protocol)."""
    waveforms = np.asarray(waveforms)
    batch, num_samples = waveforms.shape[:2]
    starts = window_starts(num_samples, window, hop)
    if len(starts) == 1:
        return np.asarray(model.predict_on_batch(waveforms))
    windows = np.concatenate([waveforms[:, start : start + window] for start in starts])
    # At most `batch` windows per call: the model's memory stays that of one batch.
    logits = np.concatenate(
        [
            np.asarray(model.predict_on_batch(windows[index : index + batch]))
            for index in range(0, len(windows), batch)
        ]
    )
    return logits.reshape(len(starts), batch, -1).mean(axis=0)


class _Compiled:
    """`model` called on one device, as a compiled function with a `predict_on_batch`.

    Under a MirroredStrategy Keras's `predict_on_batch` returns every replica's outputs
    concatenated (2 replicas: twice the rows). Evaluation runs batch by batch on whole
    clips and needs exactly one row per clip, so a distributed model is called directly.
    """

    def __init__(self, model):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        self._call = tf.function(
            lambda waveforms: model(waveforms, training=False), reduce_retracing=True
        )

    def predict_on_batch(self, waveforms):
        return self._call(waveforms)


def _single_device(model):
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        return _Compiled(model)
    return model


def predict_split(model, dataset, max_batches=None, window=None, hop=None):
    """Runs `model` (training=False) over a batched (waveforms, labels) dataset.

    Batches may have different clip lengths (whole-clip evaluation), so the model is
    called batch by batch rather than through `model.predict`, which would concatenate.

    Args:
        model: the classifier.
        dataset: batches of (waveforms [batch, time], labels).
        max_batches: stop after this many batches (None: all).
        window: if set, clips longer than `window` samples are scored as the mean logits
            of windows of that length, `hop` samples apart (see `window_starts`).
        hop: hop between windows in samples (default: `window`).

    Returns:
        (labels, logits) as NumPy arrays, concatenated over the batches.
    """
    labels, logits = [], []
    model = _single_device(model)
    for index, (waveforms, batch_labels) in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        if window:
            logits.append(_windowed_logits(model, waveforms, window, hop or window))
        else:
            logits.append(np.asarray(model.predict_on_batch(waveforms)))
        labels.append(np.asarray(batch_labels))
    if not labels:
        raise ValueError("The evaluation split is empty: no batch to evaluate.")
    return np.concatenate(labels), np.concatenate(logits)


def evaluation_protocol(task, window_seconds="auto", hop_seconds=None):
    """The protocol `evaluate` follows, as recorded in metrics.json.

    "auto" scores clips longer than the training crop (`clip_seconds`) as the mean of
    crop-long windows, as the paper evaluates AudioSet (1-s windows, predictions
    averaged), so a model is tested on inputs like those it was trained on; clips no
    longer than the crop, e.g. Speech Commands' 1-s clips, are scored whole.

    Returns:
        {"protocol": "windowed" | "whole_clip", "window_seconds", "hop_seconds"}.
    """
    if window_seconds == "auto":
        crop = task.eval_preprocessing.get("min_length")
        window_seconds = crop / task.sample_rate if crop else None
    if window_seconds is None:
        return {"protocol": "whole_clip"}
    if not window_seconds > 0 or (hop_seconds is not None and not hop_seconds > 0):
        raise ValueError(
            f"evaluate.window_seconds and hop_seconds must be > 0, got {window_seconds!r} "
            f"and {hop_seconds!r}."
        )
    return {
        "protocol": "windowed",
        "window_seconds": float(window_seconds),
        "hop_seconds": float(hop_seconds or window_seconds),
    }


def compute_metrics(labels, logits, multi_label):
    """Accuracy (single-label) or mAP / AUC / d' (multi-label) of logits."""
    if multi_label:
        return metrics_lib.multilabel_metrics(labels, logits)
    return {"accuracy": metrics_lib.accuracy(labels, logits)}


@gin.configurable(
    denylist=["model", "task", "workdir", "checkpoint_dir", "extra", "return_predictions"]
)
def evaluate(
    model,
    task,
    workdir,
    checkpoint_dir=None,
    checkpoint="best",
    split="test",
    max_batches=None,
    window_seconds="auto",
    hop_seconds=None,
    extra=None,
    return_predictions=False,
):
    """Loads a checkpoint, evaluates on a split and writes ``<workdir>/metrics.json``.

    Args:
        model: the (built) AudioClassifier the checkpoint belongs to.
        task: the `experiments.data.AudioTask`.
        workdir: where ``metrics.json`` goes.
        checkpoint_dir: directory of ``best.weights.h5`` / ``last.weights.h5``
            (default ``<workdir>/checkpoints``).
        checkpoint: "best" (best on validation), "last", or None (use the model's
            current weights).
        split: "test" or "validation".
        max_batches: evaluate on at most this many batches (tests; None = all).
        window_seconds: "auto" (windows of the training crop length for longer
            clips, see `evaluation_protocol`), a window length in seconds, or None to
            score every clip whole.
        hop_seconds: hop between windows (default: the window length).
        extra: more entries for the JSON file (e.g. the operative gin config).
        return_predictions: also return the labels and logits it scored.

    Returns:
        The dict written to ``metrics.json``; with `return_predictions`, (that dict,
        labels, logits), the last two {task: array} for a multi-task model. A
        `multitask.MultiTask` is scored task by task, under ``"tasks"``.
    """
    checkpoint_dir = checkpoint_dir or os.path.join(workdir, "checkpoints")
    checkpoint_path = None
    if checkpoint is not None:
        names = {"best": checkpointing.BEST_CHECKPOINT, "last": checkpointing.LAST_CHECKPOINT}
        if checkpoint not in names:
            raise ValueError(f"checkpoint must be 'best', 'last' or None, got {checkpoint!r}.")
        checkpoint_path = os.path.join(checkpoint_dir, names[checkpoint])
        if not os.path.exists(checkpoint_path):
            raise FileNotFoundError(f"No {checkpoint} checkpoint at {checkpoint_path}.")
        model.load_weights(checkpoint_path)
    if split not in ("test", "validation"):
        raise ValueError(f"split must be 'test' or 'validation', got {split!r}.")
    score = functools.partial(
        score_task,
        split=split,
        max_batches=max_batches,
        window_seconds=window_seconds,
        hop_seconds=hop_seconds,
    )
    tasks = getattr(task, "tasks", None)
    if tasks is None:
        results = {"dataset": task.name, "split": split}
        scores, labels, logits = score(model, task)
        results.update(scores)
        results["checkpoint"] = checkpoint_path
    else:
        # Multi-task: every head scored on its own task's clips.
        results = {"dataset": task.name, "split": split, "checkpoint": checkpoint_path}
        results["tasks"], labels, logits = {}, {}, {}
        for name, single in tasks.items():
            scores, labels[name], logits[name] = score(_Head(model, name), single)
            results["tasks"][name] = {"dataset": single.name, **scores}
    best_info = os.path.join(checkpoint_dir, checkpointing.BEST_INFO)
    if checkpoint == "best" and os.path.exists(best_info):
        with open(best_info) as f:
            results["checkpoint_info"] = json.load(f)
    results["dataset_stats"] = dict(task.stats or {})
    results.update(extra or {})
    results = _jsonable(results)
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, METRICS_FILE)
    checkpointing.write_json_atomically(results, path)
    for name, scores in (results.get("tasks") or {task.name: results}).items():
        summary = {key: scores[key] for key in SUMMARY_METRICS if key in scores}
        logging.info(
            "%s %s metrics (%d examples): %s", name, split, scores["num_examples"], summary
        )
    logging.info("Metrics written to %s", path)
    if return_predictions:
        return results, labels, logits
    return results


SUMMARY_METRICS = ("accuracy", "mAP", "AUC", "d_prime")


class _Head:
    """One task's output of a multi-task model, as `predict_split` calls a model."""

    def __init__(self, model, name):
        self.model, self.name = _single_device(model), name

    def predict_on_batch(self, waveforms):
        return self.model.predict_on_batch(waveforms)[self.name]


def score_task(
    model, task, split="test", max_batches=None, window_seconds="auto", hop_seconds=None
):
    """Scores `model` on one task's split.

    Returns:
        (scores dict: protocol, counts and metrics; labels; logits).
    """
    protocol = evaluation_protocol(task, window_seconds, hop_seconds)
    window = hop = None
    if protocol["protocol"] == "windowed":
        window = int(round(protocol["window_seconds"] * task.sample_rate))
        hop = int(round(protocol["hop_seconds"] * task.sample_rate))
    labels, logits = predict_split(model, getattr(task, split), max_batches, window, hop)
    scores = {
        "evaluation": protocol,
        "num_examples": int(labels.shape[0]),
        "num_classes": int(task.num_classes),
        "multi_label": bool(task.multi_label),
    }
    scores.update(compute_metrics(labels, logits, task.multi_label))
    return scores, labels, logits
