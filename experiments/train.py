"""Training loop: Keras `fit` with checkpoints, backups, TensorBoard and a NaN guard.

Files written to the workdir:

- ``checkpoints/last.weights.h5`` (+ ``last.json``) after every epoch,
  ``checkpoints/best.weights.h5`` (+ ``best.json``) when the validation metric improves;
- ``backup/``: `keras.callbacks.BackupAndRestore` state. Restarting the same command with
  the same workdir resumes from the last completed epoch. It is kept when training ends, so
  rerunning a finished command (or one killed during evaluation or export) trains no more
  epochs; raising ``train.num_epochs`` continues the run;
- ``tensorboard/``: Keras's train/validation logs and, for LEAF, the learned Gabor center
  frequencies and bandwidths in Hz (run ``gabor``);
- ``training_log.csv``: one row per epoch (appended across restarts).
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

import gin
from experiments import checkpointing
from experiments import configurables
from experiments import distribution as distribution_lib
from experiments import nan_guard as nan_guard_lib
from experiments import optimizers
from experiments import summaries


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


@dataclasses.dataclass
class TrainResult:
    """What `train` produced.

    Attributes:
        model: the trained model (weights of the last step).
        history: the `keras.callbacks.History` of the fit call.
        checkpoint_dir: directory of ``last.weights.h5`` / ``best.weights.h5``.
        best_checkpoint: path of the best checkpoint (None if no epoch completed).
        distribution: the `distribution.Distribution` used.
        initial_epoch: the epoch training (re)started from (> 0 after a resume).
    """

    model: keras.Model
    history: object
    checkpoint_dir: str
    best_checkpoint: str
    distribution: object
    initial_epoch: int = 0


def loss_and_metrics(multi_label):
    """The loss, metrics and monitored validation metric of a task type.

    Single-label: softmax cross-entropy on logits, accuracy. Multi-label: sigmoid
    binary cross-entropy on logits, multi-label ROC AUC.
    """
    if multi_label:
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        metrics = [keras.metrics.AUC(multi_label=True, from_logits=True, name="auc")]
        return loss, metrics, "val_auc"
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return loss, ["sparse_categorical_accuracy"], "val_sparse_categorical_accuracy"


def compile_arguments(multi_label):
    """`model.compile`'s loss and metrics, the monitored metric and its mode.

    Args:
        multi_label: a task's flag, or {task: flag} for multi-task training. Multi-task
            batches weight each row 1 for its own task and 0 for the others, so the
            metrics are weighted ones, and the monitored value is the validation loss
            (the sum of the tasks' losses), the one number every task contributes to.

    Returns:
        (compile keyword arguments, monitor, mode).
    """
    if not isinstance(multi_label, dict):
        loss, metrics, monitor = loss_and_metrics(multi_label)
        return {"loss": loss, "metrics": metrics}, monitor, "max"
    per_task = {name: loss_and_metrics(flag) for name, flag in multi_label.items()}
    arguments = {
        "loss": {name: loss for name, (loss, _, _) in per_task.items()},
        "weighted_metrics": {name: metrics for name, (_, metrics, _) in per_task.items()},
    }
    return arguments, "val_loss", "min"


def build_model(num_outputs, sample_rate):
    """Builds the gin-configured AudioClassifier and creates its weights.

    Args:
        num_outputs: number of classes, or {task: number of classes} (one head each).
        sample_rate: the task's sample rate; must match the frontend's.

    Returns:
        The built model.

    Raises:
        ValueError: if the frontend expects another sample rate than the data has.
    """
    model = configurables.configurable("AudioClassifier")(num_outputs=num_outputs)
    frontend = getattr(model, "frontend", None)
    frontend_rate = getattr(frontend, "sample_rate", None)
    if frontend_rate is not None and int(frontend_rate) != int(sample_rate):
        raise ValueError(
            f"The frontend expects {frontend_rate} Hz audio but the dataset is "
            f"{sample_rate} Hz; set e.g. Leaf.sample_rate = {sample_rate} (and "
            "the initializers' sample_rate) in the gin config."
        )
    # BackupAndRestore needs built weights before fit() to restore into them; a one-second
    # dummy clip builds them.
    model(np.zeros((1, int(sample_rate)), np.float32), training=False)
    return model


def _batches(dataset):
    """The number of batches of one pass over `dataset`, or None if tf.data cannot tell."""
    count = int(dataset.cardinality())
    return count if count > 0 else None


def _build_before_multi_worker_fit(model, distribution, dataset):
    """Builds the compiled metrics and optimizer from one local batch, before `fit`.

    Keras 3.15's TensorFlow trainer starts `fit` under a strategy by averaging the first
    distributed batch with an eager `strategy.reduce`, only to build the model, its
    metrics and optimizer; under MultiWorkerMirroredStrategy that reduce fails ("Attempt
    to convert a value (PerReplica...) to a Tensor"). Building from a batch of this worker
    gives the same variables, and the reduce is then skipped. (`_symbolic_build` and
    `_maybe_symbolic_build` are Keras internals: there is no public way to do this.)
    """
    waveforms, *rest = next(iter(dataset))
    with distribution.scope():
        model._symbolic_build(data_batch=(waveforms, *rest))  # pylint: disable=protected-access
    model._maybe_symbolic_build = lambda *args, **kwargs: None  # pylint: disable=protected-access
    _reduce_multi_worker_logs_as_first_replica()


def _reduce_multi_worker_logs_as_first_replica():
    """Works around Keras 3.15 reducing multi-worker step logs with a failing mean.

    Keras's TensorFlow trainer reduces each step's logs (loss, metric results) across a
    MultiWorkerMirroredStrategy with ``strategy.reduce("MEAN", v, axis=0)``, which fails
    on scalars ("Invalid reduction dimension 0 for input with 0 dimensions";
    tensorflow/tensorflow#72388). The logs are metric results, already aggregated over
    every replica when read, so the first replica's value is the value: what Keras itself
    does on TPUs (``reduction="first"``).
    """
    from keras.src.backend.tensorflow import trainer  # pylint: disable=import-outside-toplevel

    if getattr(trainer.reduce_per_replica, "_leaf_keras_patched", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        ):
            return tf.nest.map_structure(
                lambda v: (
                    strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                values,
            )
        return original(values, strategy, reduction)

    reduce_per_replica._leaf_keras_patched = True  # pylint: disable=protected-access
    trainer.reduce_per_replica = reduce_per_replica


@gin.configurable(denylist=["task", "workdir", "distribution"])
def train(
    task,
    workdir,
    num_epochs=10,
    steps_per_epoch=None,
    validation_steps=None,
    learning_rate=1e-4,
    optimizer="adam",
    weight_decay=0.0,
    learning_rate_schedule="constant",
    restart_epochs=None,
    gradient_clip_norm=None,
    frontend_learning_rate_multiplier=1.0,
    early_stopping_patience=None,
    strategy="default",
    distribution=None,
    seed=0,
    extra_callbacks=(),
    backup_save_freq="epoch",
    tensorboard_histogram_freq=0,
    log_gabor_filters=True,
    jit_compile="auto",
    verbose="auto",
):
    """Trains the gin-configured AudioClassifier on `task`.

    Args:
        task: an `experiments.data.AudioTask`, or a `multitask.MultiTask` (one head per
            task; the best checkpoint is the one of the lowest validation loss).
        workdir: output directory (created if needed).
        num_epochs: number of epochs.
        steps_per_epoch: batches per epoch; None = one pass over ``task.train``. When
            set, the training set is repeated so every epoch has this many batches.
        validation_steps: batches of validation per epoch (None = all).
        learning_rate: the optimizer's (peak) learning rate.
        optimizer: "adam" (the paper) or "adamw" (see `experiments.optimizers`).
        weight_decay: AdamW's decoupled weight decay (not applied to the frontend).
        learning_rate_schedule: "constant" (the paper), "cosine" (to 0 over the run) or
            "cosine_restarts" (warm restarts, periods doubling).
        restart_epochs: first period of "cosine_restarts" in epochs (default: a tenth
            of the run).
        gradient_clip_norm: clip the global gradient norm to this (None: no clipping).
        frontend_learning_rate_multiplier: the frontend's weights are trained at this
            multiple of the learning rate (e.g. 10 so LEAF's filters move).
        early_stopping_patience: stop after this many epochs without a better
            validation metric (None: train every epoch).
        strategy: distribution strategy name, see `experiments.distribution`.
        distribution: a `distribution.Distribution` already made (then `strategy` is
            not used). A multi-worker strategy must exist before any other TensorFlow
            op runs (collective ops are configured at startup), so `run_experiment`
            makes it before it loads the data.
        seed: seeds Python, NumPy and the backend (weights init, dropout, SpecAugment).
        extra_callbacks: more Keras callbacks, run after the built-in ones.
        backup_save_freq: `BackupAndRestore` frequency: "epoch" or a number of batches.
        tensorboard_histogram_freq: if > 0, also run `keras.callbacks.TensorBoard` with
            weight histograms every N epochs (needs the ``tensorboard`` package).
        log_gabor_filters: log LEAF's Gabor center frequencies/bandwidths (Hz).
        jit_compile: passed to `model.compile`.
        verbose: passed to `model.fit` ("auto" shows the progress bar).

    Returns:
        A `TrainResult`.

    Raises:
        TrainingDivergedError: the loss became NaN/inf; the checkpoints on disk are those
            of the last good epoch.
    """
    os.makedirs(workdir, exist_ok=True)
    keras.utils.set_random_seed(seed)
    if distribution is None:
        distribution = distribution_lib.make_strategy(name=strategy)
    optimizers.check_recipe(
        optimizer,
        learning_rate_schedule,
        weight_decay,
        gradient_clip_norm,
        frontend_learning_rate_multiplier,
    )
    compile_kwargs, monitor, mode = compile_arguments(task.multi_label)
    # A multi-task input is infinite: its epoch is the largest task's.
    steps_per_epoch = steps_per_epoch or getattr(task, "steps_per_epoch", None)
    epoch_steps = steps_per_epoch or _batches(task.train)
    with distribution.scope():
        model = build_model(task.num_classes, task.sample_rate)
        frontend = getattr(model, "frontend", None)
        schedule = optimizers.learning_rate_schedule(
            learning_rate,
            learning_rate_schedule,
            total_steps=epoch_steps * num_epochs if epoch_steps else None,
            restart_steps=restart_epochs * epoch_steps if restart_epochs and epoch_steps else None,
        )
        model.compile(
            optimizer=optimizers.make_optimizer(
                optimizer,
                schedule,
                weight_decay=weight_decay,
                clip_norm=gradient_clip_norm,
                frontend_variables=frontend.trainable_variables if frontend else (),
                frontend_multiplier=frontend_learning_rate_multiplier,
            ),
            **compile_kwargs,
            jit_compile=jit_compile,
        )

    # Non-chief workers of a multi-worker job write next to, not into, the chief's files.
    outdir = workdir if distribution.is_chief else os.path.join(workdir, "non_chief_tmp")
    checkpoint_dir = os.path.join(outdir, "checkpoints")
    nan_guard = nan_guard_lib.NaNGuard()
    checkpointer = checkpointing.EpochCheckpoint(
        checkpoint_dir, monitor=monitor, mode=mode, nan_guard=nan_guard
    )
    backup = checkpointing.SafeBackupAndRestore(
        os.path.join(outdir, "backup"),
        nan_guard=nan_guard,
        save_freq=backup_save_freq,
        double_checkpoint=True,
        # Kept after training: a kill during evaluation or export, or rerunning a finished
        # command, then restores the last epoch instead of training again from epoch 0.
        delete_checkpoint=False,
    )
    tensorboard_dir = os.path.join(outdir, "tensorboard")
    callbacks = [
        nan_guard,
        backup,
        checkpointer,
        keras.callbacks.CSVLogger(os.path.join(outdir, "training_log.csv"), append=True),
    ]
    callbacks.append(summaries.EpochTensorBoard(tensorboard_dir))
    if tensorboard_histogram_freq:
        # Keras's callback needs the `tensorboard` package (not a dependency).
        callbacks.append(
            keras.callbacks.TensorBoard(
                os.path.join(tensorboard_dir, "keras"), histogram_freq=tensorboard_histogram_freq
            )
        )
    if log_gabor_filters:
        callbacks.append(summaries.GaborTensorBoard(tensorboard_dir))
    if early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor, patience=early_stopping_patience, mode=mode)
        )
    callbacks.extend(extra_callbacks)

    infinite = int(task.train.cardinality()) == int(tf.data.INFINITE_CARDINALITY)
    train_data = task.train.repeat() if steps_per_epoch and not infinite else task.train
    if distribution.name == "multi_worker":
        _build_before_multi_worker_fit(model, distribution, task.train)
    history = model.fit(
        train_data,
        validation_data=task.validation,
        epochs=num_epochs,
        steps_per_epoch=steps_per_epoch,
        validation_steps=validation_steps,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # task.train shuffles itself; Keras cannot shuffle a tf.data input.
    )
    initial_epoch = int(getattr(model, "_initial_epoch", 0) or 0)
    best = checkpointer.best_path if os.path.exists(checkpointer.best_path) else None

    if nan_guard.triggered:
        epoch, batch = nan_guard.triggered_at
        kept = (
            f"the last good checkpoint {checkpointer.last_path} was kept"
            if os.path.exists(checkpointer.last_path)
            else "no epoch had completed, so there is no checkpoint"
        )
        raise TrainingDivergedError(
            f"Training stopped: the loss became NaN or infinite at epoch {epoch + 1}, batch "
            f"{batch + 1}; {kept}. Lower train.learning_rate (now {learning_rate}) or check "
            "the input data for NaN/inf values."
        )
    return TrainResult(
        model=model,
        history=history,
        checkpoint_dir=checkpoint_dir,
        best_checkpoint=best,
        distribution=distribution,
        initial_epoch=initial_epoch,
    )
