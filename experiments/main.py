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
the same workdir resumes an interrupted training from its last completed epoch. On
TensorFlow, glibc's malloc is set to keep freed memory (`experiments.allocator`;
``LEAF_KERAS_MALLOC=system`` keeps its defaults), which makes the exact LEAF step 1.7-2×
faster on CPU.

gin/common.gin (the paper's recipe) is read first, then the --gin_config files in order:
frontend files (gin/leaf.gin, gin/mel.gin, ...) only choose the frontend, dataset files
(gin/datasets/*.gin) the data, so ``--gin_config=gin/quickstart.gin
--gin_config=gin/mel.gin`` trains mel on the quickstart's data and recipe. Gin files are
looked up relative to the current directory, then to the repository root.
"""

import json
import os
import sys
import time
from typing import Sequence

from absl import app
from absl import flags
from absl import logging

from experiments import allocator
from experiments import cli

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
# The names of experiments.distribution.STRATEGIES, which imports TensorFlow.
_STRATEGY = flags.DEFINE_enum(
    "strategy",
    None,
    ["default", "one_device", "mirrored", "multi_worker", "tpu", "data_parallel"],
    "Distribution strategy; overrides the gin binding train.strategy.",
)

_HELP_FLAGS = ("-h", "-?", "--help", "--helpshort", "--helpfull")


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cli.quiet_tensorflow(logging.get_verbosity())
    cli.quiet_libraries(logging.get_verbosity())
    import keras  # pylint: disable=import-outside-toplevel

    from experiments import experiment  # pylint: disable=import-outside-toplevel
    from experiments.data import audio_io  # pylint: disable=import-outside-toplevel

    # Before the first step: its freed buffers stay mapped for the next (TensorFlow only,
    # where it costs no memory; see experiments/allocator.py).
    if allocator.for_backend(keras.backend.backend()):
        logging.info("malloc keeps freed memory (experiments/allocator.py).")

    started = time.monotonic()
    try:
        experiment.parse_gin(_GIN_CONFIG.value, _GIN_BINDINGS.value)
    except (ValueError, OSError) as error:
        # A misspelled name or a missing file: the message says which; no traceback.
        sys.exit(f"ERROR in the gin configuration: {error}")
    kwargs = {}
    if _WORKDIR.value:
        kwargs["workdir"] = _WORKDIR.value
    if _STRATEGY.value:
        kwargs["strategy"] = _STRATEGY.value
    try:
        workdir = experiment.configured_workdir(_WORKDIR.value)
        metrics = experiment.run_experiment(**kwargs)
    except (
        experiment.train_lib.TrainingDivergedError,
        experiment.workdir_lock.WorkdirInUseError,
        experiment.workdir_lock.WorkdirNotWritableError,
        experiment.workdir_lock.WorkdirFullError,
        experiment.train_lib.checkpointing.CheckpointWriteError,
        audio_io.DataNotFoundError,
    ) as error:
        logging.error("%s", error)
        sys.exit(f"ERROR: {error}")
    info_path = os.path.join(workdir, "export", "export_info.json")
    export_info = None
    if os.path.exists(info_path):
        with open(info_path) as f:
            export_info = json.load(f)
    print(cli.summary(workdir, metrics, time.monotonic() - started, export_info), flush=True)


def _print_help() -> None:
    cli.quiet_tensorflow()
    flags_help = flags.FLAGS.main_module_help()
    print(cli.help_text(__doc__, flags_help, REPO_ROOT))


if __name__ == "__main__":
    # absl's own --help exits with status 1; the page here exits 0 and also lists the gin
    # files, datasets and strategies.
    if any(argument in _HELP_FLAGS for argument in sys.argv[1:]):
        _print_help()
        sys.exit(0)
    app.run(main)
