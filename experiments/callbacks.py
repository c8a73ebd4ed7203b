"""Keras callbacks of the training loop: NaN guard, checkpoints, backups, Gabor logging.

The NaN rule: Keras applies an update before any callback sees its loss, so when a
batch's loss is NaN/inf the model's weights may already be NaN. `NaNGuard` stops
training at that batch; `EpochCheckpoint` and `SafeBackupAndRestore` refuse to write
non-finite weights, so the files on disk stay those of the last good epoch.

The two test-only callbacks, `CrashAfterBatches` and `InjectNaNAfterBatches`, are
gin-configurable so end-to-end tests can simulate a killed job or a diverging run with
``--gin_bindings="train.extra_callbacks = [@CrashAfterBatches()]"``.
"""

import json
import math
import os
import shutil

from absl import logging
import gin
import keras
import numpy as np

LAST_CHECKPOINT = "last.weights.h5"
BEST_CHECKPOINT = "best.weights.h5"
BEST_INFO = "best.json"
LAST_INFO = "last.json"


def weights_are_finite(model):
    """True if every variable of `model` (and of its optimizer, if built) is finite."""
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    for variable in variables:
        value = keras.ops.convert_to_numpy(variable)
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            return False
    return True


def _is_finite_number(value):
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # Not a number (e.g. a string log entry): nothing to judge.


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN` it records where it happened
    (`triggered_at` = (epoch, batch), both 0-based), which the checkpoint callbacks and
    the training loop read to keep the last good checkpoint and report the failure.
    """

    def __init__(self):
        super().__init__()
        self.triggered_at = None
        self._epoch = 0

    @property
    def triggered(self):
        return self.triggered_at is not None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not _is_finite_number(loss) and not self.triggered:
            self.triggered_at = (self._epoch, batch)
            logging.error("Loss is %s at epoch %d, batch %d: stopping training.",
                          loss, self._epoch + 1, batch + 1)
            self.model.stop_training = True


def _save_weights_atomically(model, path):
    """Writes the weights to a temporary file first, so a kill never leaves half a file."""
    temporary = path[:-len(".weights.h5")] + ".tmp.weights.h5"
    model.save_weights(temporary, overwrite=True)
    os.replace(temporary, path)


def _write_json_atomically(data, path):
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(temporary, path)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the weights after every good epoch and the best ones on validation.

    Files in `directory`: ``last.weights.h5`` + ``last.json`` (epoch, logs) after each
    epoch; ``best.weights.h5`` + ``best.json`` whenever `monitor` improves. The best
    value is read back from ``best.json`` at the start of training, so a resumed run
    keeps comparing against the true best. Epochs whose loss or weights are not finite
    (or after `nan_guard` fired) are never saved.

    Args:
        directory: where to write the files (created if needed).
        monitor: the log key to compare, e.g. "val_sparse_categorical_accuracy".
        mode: "max" or "min".
        nan_guard: optional `NaNGuard` of the same fit call.
    """

    def __init__(self, directory, monitor, mode="max", nan_guard=None):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}.")
        self.directory = directory
        self.monitor = monitor
        self.mode = mode
        self.nan_guard = nan_guard
        self.best = None

    @property
    def last_path(self):
        return os.path.join(self.directory, LAST_CHECKPOINT)

    @property
    def best_path(self):
        return os.path.join(self.directory, BEST_CHECKPOINT)

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        info_path = os.path.join(self.directory, BEST_INFO)
        if os.path.exists(info_path):
            with open(info_path) as f:
                info = json.load(f)
            if info.get("monitor") == self.monitor:
                self.best = info.get("value")

    def _improved(self, value):
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if (self.nan_guard is not None and self.nan_guard.triggered) or not all(
                _is_finite_number(value) for value in logs.values()) or not weights_are_finite(
                    self.model):
            logging.warning("Epoch %d ended with non-finite loss or weights: not saving a "
                            "checkpoint; %s is the last good one.", epoch + 1, self.last_path)
            return
        floats = {key: float(value) for key, value in logs.items()
                  if _is_finite_number(value) and not isinstance(value, str)}
        _save_weights_atomically(self.model, self.last_path)
        _write_json_atomically({"epoch": epoch + 1, "logs": floats},
                               os.path.join(self.directory, LAST_INFO))
        value = floats.get(self.monitor)
        if value is None:
            # No validation metric (e.g. no validation data): the latest epoch is the best.
            monitor, value, improved = "epoch", epoch + 1, True
        else:
            monitor, improved = self.monitor, self._improved(value)
        if improved:
            if monitor != "epoch":
                self.best = value
            shutil.copyfile(self.last_path, self.best_path + ".tmp")
            os.replace(self.best_path + ".tmp", self.best_path)
            _write_json_atomically({"epoch": epoch + 1, "monitor": monitor, "value": value,
                                    "logs": floats}, os.path.join(self.directory, BEST_INFO))
            logging.info("Epoch %d: %s = %s, saved %s", epoch + 1, monitor, value,
                         self.best_path)


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that never backs up NaN weights.

    After `nan_guard` fires it also keeps the backup directory (the last good state)
    instead of deleting it at the end of training.
    """

    def __init__(self, backup_dir, nan_guard=None, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.nan_guard = nan_guard

    def _save_model(self):
        if (self.nan_guard is not None and self.nan_guard.triggered) or not weights_are_finite(
                self.model):
            logging.warning("Not backing up non-finite weights to %s.", self.backup_dir)
            return
        super()._save_model()

    def on_train_end(self, logs=None):
        if self.nan_guard is not None and self.nan_guard.triggered:
            return
        super().on_train_end(logs)


def _summary_metadata(plugin_name, data_class):
    from tensorflow.core.framework import summary_pb2  # pylint: disable=g-import-not-at-top

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin_name
    metadata.data_class = data_class
    return metadata


def write_scalar(tag, value, step):
    """Writes a TensorBoard scalar to the default tf.summary writer.

    ``tf.summary.scalar`` / ``histogram`` live in the ``tensorboard`` package, which
    TensorFlow >= 2.20 no longer installs; these helpers write the same records with
    TensorFlow alone (``tf.summary.write`` + the plugins' metadata), so logs are
    readable by any TensorBoard installed later.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorflow.core.framework import summary_pb2  # pylint: disable=g-import-not-at-top

    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step,
                     metadata=_summary_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR))


def write_histogram(tag, values, step, bins=30):
    """Writes a TensorBoard histogram ([bins, 3] = left edge, right edge, count)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorflow.core.framework import summary_pb2  # pylint: disable=g-import-not-at-top

    values = np.asarray(values, np.float64).reshape(-1)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    buckets = np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
    tf.summary.write(tag, tf.constant(buckets, tf.float64), step=step,
                     metadata=_summary_metadata("histograms", summary_pb2.DATA_CLASS_TENSOR))


class _SummaryCallback(keras.callbacks.Callback):
    """Base class: lazily opened tf.summary writers, one per run name."""

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir
        self._writers = {}

    def _writer(self, run):
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        if run not in self._writers:
            self._writers[run] = tf.summary.create_file_writer(os.path.join(self.log_dir, run))
        return self._writers[run]

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class EpochTensorBoard(_SummaryCallback):
    """Logs every epoch's training and validation metrics to TensorBoard.

    Runs ``train`` (loss, metrics, learning rate) and ``validation`` (the ``val_*``
    entries, without the prefix) under `log_dir`, step = epoch number (1-based), so the
    curves of a resumed run continue where they stopped.
    """

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        for run, prefix in (("train", ""), ("validation", "val_")):
            entries = {key[len(prefix):]: value for key, value in logs.items()
                       if (key.startswith("val_") == (prefix == "val_"))}
            if not entries:
                continue
            with self._writer(run).as_default():
                for key, value in entries.items():
                    if _is_finite_number(value) and not isinstance(value, str):
                        write_scalar(f"epoch_{key}", value, epoch + 1)
            self._writer(run).flush()


class GaborTensorBoard(_SummaryCallback):
    """Logs the learned Gabor center frequencies and bandwidths (Hz) to TensorBoard.

    For frontends that expose ``gabor_center_frequencies_hz()`` and
    ``gabor_bandwidths_hz()`` (LEAF); other frontends are skipped. Written (run
    ``gabor``) at the start of training (step = initial epoch) and after every epoch
    (step = epoch + 1): a histogram of each, their mean/min/max, and one scalar per
    filter under ``gabor_center_hz/filter_NN`` and ``gabor_bandwidth_hz/filter_NN``.

    Args:
        log_dir: TensorBoard directory.
        frontend: the frontend layer; if None, ``model.frontend`` is used.
        per_filter_scalars: also write one scalar per filter.
    """

    def __init__(self, log_dir, frontend=None, per_filter_scalars=True):
        super().__init__(log_dir)
        self.frontend = frontend
        self.per_filter_scalars = per_filter_scalars

    def _gabor_values(self):
        """The two arrays, or None for frontends without Gabor filters."""
        frontend = self.frontend if self.frontend is not None else getattr(
            self.model, "frontend", None)
        if frontend is None or not hasattr(frontend, "gabor_center_frequencies_hz"):
            return None
        try:
            return {
                "gabor_center_hz": np.asarray(frontend.gabor_center_frequencies_hz()),
                "gabor_bandwidth_hz": np.asarray(frontend.gabor_bandwidths_hz()),
            }
        except (ValueError, AttributeError, NotImplementedError):
            # Leaf subclasses without a Gabor convolution (SincNet, TimeDomainFilterbanks)
            # inherit the helpers but raise.
            return None

    def _write(self, step):
        values = self._gabor_values()
        if values is None:
            return
        with self._writer("gabor").as_default():
            for tag, array in values.items():
                write_histogram(tag, array, step)
                write_scalar(f"{tag}_summary/mean", np.mean(array), step)
                write_scalar(f"{tag}_summary/min", np.min(array), step)
                write_scalar(f"{tag}_summary/max", np.max(array), step)
                if self.per_filter_scalars:
                    for index, value in enumerate(array.reshape(-1)):
                        write_scalar(f"{tag}/filter_{index:02d}", value, step)
        self._writer("gabor").flush()

    def on_train_begin(self, logs=None):
        self._write(int(getattr(self.model, "_initial_epoch", 0) or 0))

    def on_epoch_end(self, epoch, logs=None):
        self._write(epoch + 1)


@gin.configurable
class CrashAfterBatches(keras.callbacks.Callback):
    """Test-only: kills the process (os._exit) after `num_batches` training batches.

    Simulates a pre-empted job: no cleanup, no callbacks, no flushing, exactly like a
    SIGKILL between two batches.
    """

    def __init__(self, num_batches=gin.REQUIRED, exit_code=17):
        super().__init__()
        self.num_batches = num_batches
        self.exit_code = exit_code
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1
        if self._seen >= self.num_batches:
            logging.warning("CrashAfterBatches: exiting after %d batches.", self._seen)
            os._exit(self.exit_code)  # pylint: disable=protected-access


@gin.configurable
class InjectNaNAfterBatches(keras.callbacks.Callback):
    """Test-only: sets every trainable weight to NaN after `num_batches` batches.

    Simulates a diverging run: the next batch's loss is NaN.
    """

    def __init__(self, num_batches=gin.REQUIRED):
        super().__init__()
        self.num_batches = num_batches
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1
        if self._seen == self.num_batches:
            logging.warning("InjectNaNAfterBatches: poisoning the weights after %d batches.",
                            self._seen)
            for variable in self.model.trainable_variables:
                variable.assign(keras.ops.full(variable.shape, float("nan"), variable.dtype))
