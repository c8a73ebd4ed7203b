"""Keras callbacks that simulate failures, for the end-to-end training tests.

`CrashAfterBatches` simulates a killed job and `InjectNaNAfterBatches` a diverging
run. They live with the tests, not in `experiments`, and `register()` makes them gin
configurables the way `experiments.configurables` registers Keras classes, so a test
can write ``--gin_bindings="train.extra_callbacks = [@CrashAfterBatches()]"`` for a
process started through `main_with_fault_injection.py`.
"""

import os

import keras
from absl import logging

import gin

GIN_MODULE = "fault_injection"


class CrashAfterBatches(keras.callbacks.Callback):
    """Kills the process (os._exit) after `num_batches` training batches.

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


class InjectNaNAfterBatches(keras.callbacks.Callback):
    """Sets every trainable weight to NaN after `num_batches` batches.

    Simulates a diverging run: the next batch's loss is NaN.
    """

    def __init__(self, num_batches=gin.REQUIRED):
        super().__init__()
        self.num_batches = num_batches
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1
        if self._seen == self.num_batches:
            logging.warning(
                "InjectNaNAfterBatches: poisoning the weights after %d batches.", self._seen
            )
            for variable in self.model.trainable_variables:
                variable.assign(keras.ops.full(variable.shape, float("nan"), variable.dtype))


def register():
    """Registers both callbacks with gin as ``fault_injection.<class name>``."""
    for callback in (CrashAfterBatches, InjectNaNAfterBatches):
        gin.external_configurable(callback, module=GIN_MODULE)
