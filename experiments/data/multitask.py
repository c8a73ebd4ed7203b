"""Multi-task training data: several `AudioTask`s feeding one shared frontend and encoder.

The LEAF paper (Table 3) trains one frontend on eight tasks at once, one classification
head per task. `combine` turns the tasks' pipelines into the inputs of a Keras model with
one output per task:

- every training batch holds one batch of *every* task, concatenated, so each optimizer
  step sees every task. Each task's labels are given for all rows (zeros for the other
  tasks' rows) with a sample weight of 1 on its own rows and 0 elsewhere, so a head
  learns only from its task's clips. Smaller training sets are repeated; an epoch is as
  many steps as the largest task has batches;
- validation batches are each one task's whole clips (clip lengths differ between tasks),
  labelled and weighted the same way;
- test stays per task (`MultiTask.tasks`): evaluation scores every task on its own.
"""

import dataclasses

import tensorflow as tf

from experiments.data import preprocessing


@dataclasses.dataclass
class MultiTask:
    """Several tasks trained together (see the module docstring).

    Attributes:
        name: "multitask:" and the task names.
        tasks: {task name: AudioTask}, in head order.
        train: infinite concatenated batches (waveforms, {task: labels}, {task: weights}).
        validation: one epoch of per-task batches, labelled and weighted the same way.
        steps_per_epoch: training batches of the largest task.
        num_classes / multi_label: {task name: value}.
        sample_rate: the common sample rate.
        stats: {"<task>/<counter>": value} of every task's loading counters.
    """

    name: str
    tasks: dict
    train: tf.data.Dataset
    validation: tf.data.Dataset
    steps_per_epoch: int
    num_classes: dict
    multi_label: dict
    sample_rate: int
    stats: dict


def _empty_labels(task, rows):
    """Labels of `rows` clips of another task: zeros of `task`'s label shape and dtype."""
    if task.multi_label:
        return tf.zeros([rows, task.num_classes], tf.float32)
    return tf.zeros([rows], tf.int32)


def _labelled(tasks, own, waveforms, labels):
    """(waveforms, {task: labels}, {task: weights}) of a batch of task `own`."""
    rows = tf.shape(waveforms)[0]
    all_labels, weights = {}, {}
    for name, task in tasks.items():
        if name == own:
            all_labels[name] = tf.cast(labels, tf.float32 if task.multi_label else tf.int32)
            weights[name] = tf.ones([rows], tf.float32)
        else:
            all_labels[name] = _empty_labels(task, rows)
            weights[name] = tf.zeros([rows], tf.float32)
    return waveforms, all_labels, weights


def _concatenate(*batches):
    waveforms = tf.concat([batch[0] for batch in batches], axis=0)
    names = batches[0][1].keys()
    labels = {name: tf.concat([batch[1][name] for batch in batches], axis=0) for name in names}
    weights = {name: tf.concat([batch[2][name] for batch in batches], axis=0) for name in names}
    return waveforms, labels, weights


def _batches(dataset, what):
    count = int(dataset.cardinality())
    if count < 1:
        raise ValueError(
            f"Multi-task training needs the number of batches of every task's {what}; "
            f"tf.data reports {count}."
        )
    return count


def check_tasks(tasks):
    """Raises ValueError unless `tasks` is a non-empty {name: AudioTask} of one sample
    rate, clip length and loudness normalization."""
    if not isinstance(tasks, dict) or not tasks:
        raise ValueError(f"Multi-task training needs a dict {{task name: task}}, got {tasks!r}.")
    for name in tasks:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"Task names name the model's heads and export signatures: each must be a "
                f"Python identifier, got {name!r}."
            )
    rates = {name: task.sample_rate for name, task in tasks.items()}
    if len(set(rates.values())) != 1:
        raise ValueError(f"All tasks must have one sample rate, got {rates}.")
    # The training batches concatenate crops, and the export preprocesses once for all.
    preprocessing = {name: task.eval_preprocessing for name, task in tasks.items()}
    if len({tuple(sorted(p.items())) for p in preprocessing.values()}) != 1:
        raise ValueError(
            "All tasks must share load_task.clip_seconds and loudness_normalization "
            f"(unscoped bindings), got {preprocessing}."
        )


def combine(tasks):
    """The `MultiTask` of {task name: AudioTask}; see the module docstring.

    Raises:
        ValueError: no task, a task name that is not an identifier, different sample
            rates, or a training set whose size tf.data cannot tell.
    """
    check_tasks(tasks)
    steps = max(_batches(task.train, "training set") for task in tasks.values())
    train = tf.data.Dataset.zip(
        tuple(
            task.train.repeat().map(
                lambda waveforms, labels, own=name: _labelled(tasks, own, waveforms, labels)
            )
            for name, task in tasks.items()
        )
    ).map(_concatenate, num_parallel_calls=tf.data.AUTOTUNE)
    validation = None
    for name, task in tasks.items():
        labelled = task.validation.map(
            lambda waveforms, labels, own=name: _labelled(tasks, own, waveforms, labels)
        )
        validation = labelled if validation is None else validation.concatenate(labelled)
    stats = {
        f"{name}/{key}": value for name, task in tasks.items() for key, value in task.stats.items()
    }
    return MultiTask(
        name="multitask:" + ",".join(tasks),
        tasks=dict(tasks),
        train=preprocessing.shard_by_data(train.prefetch(tf.data.AUTOTUNE)),
        validation=preprocessing.shard_by_data(validation.prefetch(tf.data.AUTOTUNE)),
        steps_per_epoch=steps,
        num_classes={name: task.num_classes for name, task in tasks.items()},
        multi_label={name: task.multi_label for name, task in tasks.items()},
        sample_rate=next(iter(tasks.values())).sample_rate,
        stats=stats,
    )
