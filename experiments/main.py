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

import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging

from experiments import experiment

_GIN_CONFIG = flags.DEFINE_multi_string(
    "gin_config", [], "Gin config file (repeatable; later files override earlier ones)."
)
_GIN_BINDINGS = flags.DEFINE_multi_string(
    "gin_bindings",
    [],
    'Gin binding, e.g. "train.num_epochs = 2" (repeatable; applied after the files).',
)
_WORKDIR = flags.DEFINE_string(
    "workdir",
    None,
    "Output directory (checkpoints, TensorBoard logs, metrics.json, export). "
    "Overrides the gin binding run_experiment.workdir.",
)
_STRATEGY = flags.DEFINE_enum(
    "strategy",
    None,
    ["default", "one_device", "mirrored", "multi_worker", "tpu", "data_parallel"],
    "Distribution strategy; overrides the gin binding train.strategy.",
)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    experiment.parse_gin(_GIN_CONFIG.value, _GIN_BINDINGS.value)
    kwargs = {}
    if _WORKDIR.value:
        kwargs["workdir"] = _WORKDIR.value
    if _STRATEGY.value:
        kwargs["strategy"] = _STRATEGY.value
    try:
        experiment.run_experiment(**kwargs)
    except experiment.train_lib.TrainingDivergedError as error:
        logging.error("%s", error)
        sys.exit(f"ERROR: {error}")


if __name__ == "__main__":
    app.run(main)
