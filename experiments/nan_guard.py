"""Detects a diverging run: `NaNGuard` stops training at the first NaN/inf loss.

Keras applies an update before any callback sees its loss, so when a batch's loss is
NaN/inf the model's weights may already be NaN. `NaNGuard` stops training at that batch
and records where; the checkpoint callbacks (`experiments.checkpointing`) consult it and
`weights_are_finite`, so that the files on disk stay those of the last good epoch.
"""

import math

import keras
import numpy as np
from absl import logging


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


def is_finite_number(value):
    """False only for a number that is NaN or infinite."""
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
        if loss is not None and not is_finite_number(loss) and not self.triggered:
            self.triggered_at = (self._epoch, batch)
            logging.error(
                "Loss is %s at epoch %d, batch %d: stopping training.",
                loss,
                self._epoch + 1,
                batch + 1,
            )
            self.model.stop_training = True
