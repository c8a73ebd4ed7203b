r"""Trains, evaluates and exports an audio classifier configured with gin.

Usage (from the repository root):

    python -m experiments.main --gin_config=gin/quickstart.gin --workdir=/tmp/leaf_quickstart

    python -m experiments.main --gin_config=gin/leaf.gin \
        --gin_config=gin/datasets/speech_commands_folder.gin \
        --gin_bindings="load_task.data_dir = '/path/to/speech_commands'" \
        --workdir=/tmp/leaf_speech_commands

Steps: parse the gin files and bindings and check every binding (before any data is
read, so a misspelled name fails at once with an error naming it) → load the task →
train (`experiments.train`) → evaluate the best checkpoint on the test split and write
``<workdir>/metrics.json`` (`experiments.evaluate`) → export a SavedModel and a TFLite
model to ``<workdir>/export`` (`experiments.export`). Running the same command again with
the same workdir resumes an interrupted training from its last completed epoch.

Gin config files are looked up relative to the current directory, then to the
repository root, so ``--gin_config=gin/leaf.gin`` works from anywhere in a checkout.
"""

import os
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import gin

from experiments import configurables

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_GIN_CONFIG = flags.DEFINE_multi_string(
    "gin_config", [], "Gin config file (repeatable; later files override earlier ones).")
_GIN_BINDINGS = flags.DEFINE_multi_string(
    "gin_bindings", [], "Gin binding, e.g. \"train.num_epochs = 2\" (repeatable; applied "
    "after the files).")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output directory (checkpoints, TensorBoard logs, metrics.json, export). "
    "Overrides the gin binding run_experiment.workdir.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", None, ["default", "one_device", "mirrored", "multi_worker", "tpu",
                       "data_parallel"],
    "Distribution strategy; overrides the gin binding train.strategy.")


def parse_gin(config_files, bindings):
    """Parses gin files and bindings, then rejects unknown parameter names.

    Raises:
        ValueError / IOError: gin's error for an unknown configurable, a bad binding or
            a missing file; `configurables.validate_bindings`'s for an unknown parameter.
    """
    configurables.register_all()
    # Every module that defines configurables must be imported before parsing.
    # pylint: disable=g-import-not-at-top,unused-import
    from experiments import data
    from experiments import distribution
    from experiments import evaluate
    from experiments import export
    from experiments import train
    # pylint: enable=g-import-not-at-top,unused-import
    if REPO_ROOT not in gin.config._LOCATION_PREFIXES:  # pylint: disable=protected-access
        gin.add_config_file_search_path(REPO_ROOT)
    gin.parse_config_files_and_bindings(config_files, bindings)
    configurables.validate_bindings()


@gin.configurable(denylist=["strategy"])
def run_experiment(workdir="/tmp/leaf_keras", evaluate=True, export=True, strategy=None):
    """Loads the task, trains, evaluates on test and exports; returns the metrics dict.

    Args:
        workdir: output directory.
        evaluate: evaluate the best checkpoint on the test split (metrics.json).
        export: write the SavedModel / TFLite export.
        strategy: distribution strategy name overriding ``train.strategy``.

    Returns:
        The metrics written to metrics.json (or {} if `evaluate` is False).
    """
    # Imported here so that `--help` and gin errors never pay for TensorFlow's import.
    from experiments import data  # pylint: disable=g-import-not-at-top
    from experiments import evaluate as evaluate_lib  # pylint: disable=g-import-not-at-top
    from experiments import export as export_lib  # pylint: disable=g-import-not-at-top
    from experiments import train as train_lib  # pylint: disable=g-import-not-at-top

    os.makedirs(workdir, exist_ok=True)
    task = data.load_task()
    logging.info("Task %s: %d classes (%s), %d Hz, stats %s", task.name, task.num_classes,
                 "multi-label" if task.multi_label else "single-label", task.sample_rate,
                 task.stats)
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
            result.model, task, workdir, checkpoint_dir=result.checkpoint_dir,
            extra={"gin_config": operative_config, "class_names": list(task.class_names)})
    if export:
        export_lib.export(result.model, workdir, task.multi_label,
                          extra_info={"class_names": list(task.class_names),
                                      "sample_rate": task.sample_rate})
    return results


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    parse_gin(_GIN_CONFIG.value, _GIN_BINDINGS.value)
    kwargs = {}
    if _WORKDIR.value:
        kwargs["workdir"] = _WORKDIR.value
    if _STRATEGY.value:
        kwargs["strategy"] = _STRATEGY.value
    from experiments import train as train_lib  # pylint: disable=g-import-not-at-top
    try:
        run_experiment(**kwargs)
    except train_lib.TrainingDivergedError as error:
        logging.error("%s", error)
        sys.exit(f"ERROR: {error}")


if __name__ == "__main__":
    app.run(main)
