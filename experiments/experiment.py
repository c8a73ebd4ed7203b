"""One experiment: parse the gin config, then train → evaluate on test → export.

`experiments.main` is the command-line entry point around these two functions; tests and
notebooks can call them directly:

    from experiments import experiment
    experiment.parse_gin(["gin/quickstart.gin"], ["train.num_epochs = 1"])
    metrics = experiment.run_experiment(workdir="/tmp/run")
"""

import inspect
import os

from absl import logging

import gin

# Every module that defines gin configurables is imported before any parsing.
from experiments import configurables
from experiments import data  # pylint: disable=unused-import
from experiments import distribution
from experiments import evaluate as evaluate_lib
from experiments import export as export_lib
from experiments import train as train_lib

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
            a missing file; `configurables.validate_bindings`'s for an unknown parameter.
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
    # Checked here, before any data is read, rather than when training starts.
    strategy = gin.get_bindings("train").get("strategy")
    if strategy is not None:
        distribution.check_name(strategy)


def configured_workdir(workdir=None):
    """The workdir `run_experiment` writes to: `workdir`, else its gin binding or default."""
    if workdir:
        return workdir
    default = inspect.signature(run_experiment).parameters["workdir"].default
    return gin.get_bindings("run_experiment").get("workdir", default)


@gin.configurable(denylist=["strategy"])
def run_experiment(workdir="/tmp/leaf_keras", evaluate=True, export=True, strategy=None):
    """Loads the task, trains, evaluates on test and exports; returns the metrics dict.

    Args:
        workdir: output directory.
        evaluate: evaluate the best checkpoint on the test split (metrics.json).
        export: write the SavedModel / TFLite export of the best checkpoint.
        strategy: distribution strategy name overriding ``train.strategy``.

    Returns:
        The metrics written to metrics.json (or {} if `evaluate` is False).
    """
    os.makedirs(workdir, exist_ok=True)
    task = data.load_task()
    logging.info(
        "Task %s: %d classes (%s), %d Hz, stats %s",
        task.name,
        task.num_classes,
        "multi-label" if task.multi_label else "single-label",
        task.sample_rate,
        task.stats,
    )
    train_kwargs = {} if strategy is None else {"strategy": strategy}
    result = train_lib.train(task, workdir, **train_kwargs)
    if not result.distribution.is_chief:
        return {}
    operative_config = gin.operative_config_str()
    with open(os.path.join(workdir, "operative_config.gin"), "w") as f:
        f.write(operative_config)
    results = {}
    if evaluate:
        results = evaluate_lib.evaluate(
            result.model,
            task,
            workdir,
            checkpoint_dir=result.checkpoint_dir,
            extra={"gin_config": operative_config, "class_names": list(task.class_names)},
        )
    if export:
        if not evaluate and result.best_checkpoint:
            result.model.load_weights(result.best_checkpoint)  # Export the best weights.
        export_lib.export(
            result.model,
            workdir,
            task.multi_label,
            extra_info={"class_names": list(task.class_names), "sample_rate": task.sample_rate},
            preprocessing=task.eval_preprocessing,
        )
    return results
