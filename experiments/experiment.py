"""One experiment: parse the gin config, then train → evaluate on test → export.

`experiments.main` is the command-line entry point around these two functions; tests and
notebooks can call them directly:

    from experiments import experiment
    experiment.parse_gin(["gin/quickstart.gin"], ["train.num_epochs = 1"])
    metrics = experiment.run_experiment(workdir="/tmp/run")
"""

import contextlib
import inspect
import os
import re

from absl import logging

import gin

# Every module that defines gin configurables is imported before any parsing.
from experiments import configurables
from experiments import data
from experiments import distribution
from experiments import evaluate as evaluate_lib
from experiments import export as export_lib
from experiments import report as report_lib
from experiments import train as train_lib
from experiments import workdir_lock
from experiments.data import multitask

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Read before the user's files: the paper's recipe, encoder and the macros that frontend
# files use, so frontend, dataset and recipe files compose in any number.
BASE_CONFIG = "gin/common.gin"


# Whether gin already resolves `include 'gin/...'` against the repository root.
_SEARCH_PATH_ADDED = False


def parse_gin(config_files, bindings, base_config=BASE_CONFIG):
    """Parses `base_config`, the gin files and the bindings, then checks every name.

    Args:
        config_files: gin files, read in order after `base_config` (later ones override).
        bindings: gin bindings, applied after the files.
        base_config: the file read first (None: none).

    Raises:
        ValueError / IOError: gin's error for an unknown configurable, a bad binding or
            a missing file; `configurables.validate_bindings`'s for an unknown parameter,
            `configurables.validate_macros`'s for a macro nothing uses (a misspelling).
    """
    configurables.register_all()
    global _SEARCH_PATH_ADDED
    if not _SEARCH_PATH_ADDED:
        gin.add_config_file_search_path(REPO_ROOT)
        _SEARCH_PATH_ADDED = True
    files = list(config_files)
    if base_config is not None:
        files.insert(0, base_config)
    gin.parse_config_files_and_bindings(files, bindings)
    configurables.validate_bindings()
    configurables.validate_macros(may_be_unused=_macros_of(base_config))
    # Checked here, before any data is read, rather than when training starts.
    strategy = gin.get_bindings("train").get("strategy")
    if strategy is not None:
        distribution.check_name(strategy)


def _macros_of(path):
    """The macro names a gin file defines (``name = value`` at the top level)."""
    if path is None:
        return ()
    with open(os.path.join(REPO_ROOT, path) if not os.path.isabs(path) else path) as f:
        return tuple(re.findall(r"^([A-Za-z_]\w*)\s*=", f.read(), re.MULTILINE))


def configured_workdir(workdir=None):
    """The workdir `run_experiment` writes to: `workdir`, else its gin binding or default."""
    if workdir:
        return workdir
    default = inspect.signature(run_experiment).parameters["workdir"].default
    return gin.get_bindings("run_experiment").get("workdir", default)


@gin.configurable(denylist=["strategy"])
def run_experiment(
    workdir="/tmp/leaf_keras",
    evaluate=True,
    export=True,
    report=True,
    strategy=None,
    tasks=None,
):
    """Loads the task(s), trains, evaluates on test and exports; returns the metrics dict.

    Args:
        workdir: output directory.
        evaluate: evaluate the best checkpoint on the test split (metrics.json).
        export: write the SavedModel / TFLite export of the best checkpoint.
        report: write the training report's PNG plots to ``<workdir>/report``
            (`experiments.report`; needs `evaluate`).
        strategy: distribution strategy name overriding ``train.strategy``.
        tasks: None for the single task of `data.load_task`'s bindings, or, for
            multi-task training, {task name: loader}, each loader a scoped
            ``load_task`` (``{'keywords': @keywords/load_task, ...}`` in gin): one
            shared frontend and encoder, one head per task (see gin/multitask.gin).

    Returns:
        The metrics written to metrics.json (or {} if `evaluate` is False).

    Raises:
        workdir_lock.WorkdirInUseError: another process runs an experiment in `workdir`.
        workdir_lock.WorkdirNotWritableError: `workdir` cannot be created or written.
        workdir_lock.WorkdirFullError: `workdir`'s disk has too little free space.
    """
    # Non-chief workers of a multi-worker job share the chief's workdir (and write apart
    # from it): only the chief takes the lock.
    lock = workdir_lock.WorkdirLock(workdir) if distribution.is_chief_from_tf_config() else None
    with lock or contextlib.nullcontext():
        return _run(workdir, evaluate, export, report, strategy, tasks)


def _run(workdir, evaluate, export, report, strategy, tasks):
    # Before any other TensorFlow op: MultiWorkerMirroredStrategy configures the collective
    # ops at program startup and fails once the data pipelines have run.
    if strategy is None:
        strategy = gin.get_bindings("train").get("strategy") or _default_strategy()
    made = distribution.make_strategy(name=strategy)
    if tasks is None:
        task = data.load_task()
        single_tasks = {task.name: task}
    else:
        if not isinstance(tasks, dict) or not tasks:
            raise ValueError(
                "run_experiment.tasks must be a dict {task name: @<name>/load_task}, "
                f"got {tasks!r}."
            )
        single_tasks = {name: loader() for name, loader in tasks.items()}
        task = multitask.combine(single_tasks)
    for name, single in single_tasks.items():
        logging.info(
            "Task %s (%s): %d classes (%s), %d Hz, stats %s",
            name,
            single.name,
            single.num_classes,
            "multi-label" if single.multi_label else "single-label",
            single.sample_rate,
            single.stats,
        )
    result = train_lib.train(task, workdir, distribution=made)
    if not result.distribution.is_chief:
        return {}
    operative_config = gin.operative_config_str()
    with open(os.path.join(workdir, "operative_config.gin"), "w") as f:
        f.write(operative_config)
    class_names = (
        list(task.class_names)
        if tasks is None
        else {name: list(single.class_names) for name, single in single_tasks.items()}
    )
    results = {}
    if evaluate:
        results, labels, logits = evaluate_lib.evaluate(
            result.model,
            task,
            workdir,
            checkpoint_dir=result.checkpoint_dir,
            extra={"gin_config": operative_config, "class_names": class_names},
            return_predictions=True,
        )
        if report:
            _write_report(workdir, result.model, single_tasks, labels, logits, tasks is None)
    if export:
        if not evaluate and result.best_checkpoint:
            result.model.load_weights(result.best_checkpoint)  # Export the best weights.
        export_lib.export(
            result.model,
            workdir,
            task.multi_label,
            extra_info={"class_names": class_names, "sample_rate": task.sample_rate},
            # Every task of a multi-task run shares the clip length and normalization.
            preprocessing=next(iter(single_tasks.values())).eval_preprocessing,
        )
    return results


def _default_strategy():
    return inspect.signature(train_lib.train).parameters["strategy"].default


def _write_report(workdir, model, single_tasks, labels, logits, single):
    """The report's plots; a multi-task run gets one confusion/AP plot per task."""
    if single:
        (task,) = single_tasks.values()
        report_lib.write_report(workdir, model, labels, logits, task.class_names, task.multi_label)
        return
    report_lib.write_report(workdir, model, None, None, None, False)
    for name, task in single_tasks.items():
        report_lib.write_report(
            workdir,
            None,
            labels[name],
            logits[name],
            task.class_names,
            task.multi_label,
            task_name=name,
        )
