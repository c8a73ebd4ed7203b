"""Checkpoints and backups of the training loop that never hold NaN weights.

`EpochCheckpoint` writes the last and the best weights of every good epoch;
`SafeBackupAndRestore` is Keras's `BackupAndRestore` (resume after a kill) that skips
non-finite weights. Both write a file under a temporary name and rename it, so a
killed job or a full disk never leaves half a file (`CheckpointWriteError` then says
that the previous file is intact), and both consult the `NaNGuard` of the same fit
call: after a NaN/inf loss the files on disk stay those of the last good epoch.
"""

import json
import os
import shutil

import keras
from absl import logging

from experiments.nan_guard import is_finite_number
from experiments.nan_guard import weights_are_finite

LAST_CHECKPOINT = "last.weights.h5"
BEST_CHECKPOINT = "best.weights.h5"
BEST_INFO = "best.json"
LAST_INFO = "last.json"


class CheckpointWriteError(OSError):
    """A checkpoint file could not be written (disk full, permissions); the previous
    version of the file is intact."""


def _write_atomically(path, temporary, write):
    """Runs `write()` (which fills `temporary`), then renames `temporary` onto `path`.

    A kill or a failed write (a full disk) never leaves half a file at `path`: on an
    OSError the temporary file is removed, `path` keeps its previous content, and a
    `CheckpointWriteError` says so.
    """
    try:
        write()
        os.replace(temporary, path)
    except OSError as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        previous = (
            f"the previous {os.path.basename(path)} is intact"
            if os.path.exists(path)
            else "no previous version existed"
        )
        reason = error.strerror or str(error)
        raise CheckpointWriteError(
            error.errno,
            f"Could not write {path}: {reason}; {previous}. Free disk space (or fix the "
            "permissions) and rerun the same command: it resumes from the last completed "
            "epoch.",
        ) from error


def _save_weights_atomically(model, path):
    """Writes the weights to a temporary file first, so a kill never leaves half a file."""
    temporary = path[: -len(".weights.h5")] + ".tmp.weights.h5"
    _write_atomically(path, temporary, lambda: model.save_weights(temporary, overwrite=True))


def _copy_atomically(source, path):
    temporary = path + ".tmp"
    _write_atomically(path, temporary, lambda: shutil.copyfile(source, temporary))


def write_json_atomically(data, path):
    """Writes `data` as indented JSON through a temporary file renamed onto `path`."""
    temporary = path + ".tmp"

    def write():
        with open(temporary, "w") as f:
            json.dump(data, f, indent=2)

    _write_atomically(path, temporary, write)


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
        if (
            (self.nan_guard is not None and self.nan_guard.triggered)
            or not all(is_finite_number(value) for value in logs.values())
            or not weights_are_finite(self.model)
        ):
            logging.warning(
                "Epoch %d ended with non-finite loss or weights: not saving a "
                "checkpoint; %s is the last good one.",
                epoch + 1,
                self.last_path,
            )
            return
        floats = {
            key: float(value)
            for key, value in logs.items()
            if is_finite_number(value) and not isinstance(value, str)
        }
        _save_weights_atomically(self.model, self.last_path)
        write_json_atomically(
            {"epoch": epoch + 1, "logs": floats}, os.path.join(self.directory, LAST_INFO)
        )
        value = floats.get(self.monitor)
        if value is None:
            # No validation metric (e.g. no validation data): the latest epoch is the best.
            monitor, value, improved = "epoch", epoch + 1, True
        else:
            monitor, improved = self.monitor, self._improved(value)
        if improved:
            if monitor != "epoch":
                self.best = value
            _copy_atomically(self.last_path, self.best_path)
            write_json_atomically(
                {"epoch": epoch + 1, "monitor": monitor, "value": value, "logs": floats},
                os.path.join(self.directory, BEST_INFO),
            )
            logging.info("Epoch %d: %s = %s, saved %s", epoch + 1, monitor, value, self.best_path)


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that never backs up NaN weights.

    After `nan_guard` fires it also keeps the backup directory (the last good state)
    instead of deleting it at the end of training.
    """

    def __init__(self, backup_dir, nan_guard=None, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.nan_guard = nan_guard

    # Keras's BackupAndRestore saves through its `_save_model`; overriding it is the
    # one place that sees every backup (epoch ends and save_freq batches). Keras writes
    # the weights in place, so a full disk or a kill mid-write would leave a backup that
    # cannot be restored: here each file goes through a temporary one.
    def _save_model(self):
        if (self.nan_guard is not None and self.nan_guard.triggered) or not weights_are_finite(
            self.model
        ):
            logging.warning("Not backing up non-finite weights to %s.", self.backup_dir)
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            # The previous backup, which Keras restores if the latest cannot be read.
            for path, previous in (
                (self._weights_path, self._prev_weights_path),
                (self._training_metadata_path, self._prev_training_metadata_path),
            ):
                if os.path.exists(path):
                    _copy_atomically(path, previous)
        _save_weights_atomically(self.model, self._weights_path)
        write_json_atomically(
            {"epoch": self._current_epoch, "batch": self._last_batch_seen},
            self._training_metadata_path,
        )

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except ValueError as error:
            # Keras's message lists objects; say what it means and what to do.
            raise ValueError(
                f"{self.backup_dir} holds the training state of another model (another "
                "config was trained in this workdir), which cannot be restored into this "
                "one. Use a new --workdir, or delete that backup/ folder to train this "
                f"config from epoch 0 here. ({str(error).splitlines()[0]})"
            ) from error

    def on_train_end(self, logs=None):
        if self.nan_guard is not None and self.nan_guard.triggered:
            return
        super().on_train_end(logs)
