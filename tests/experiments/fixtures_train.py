"""Helpers of the training/evaluation/export tests (TensorFlow only).

Everything runs on the conftest's ``synthetic_commands_data_dir`` fixture (TFDS
"synthetic_commands/tiny": 40 train / 20 validation / 20 test clips of 1 s, 10 classes)
with a tiny encoder, so one training run takes seconds.

- ``tiny_bindings(data_dir)``: gin bindings that make any frontend config tiny;
  ``deterministic_bindings(data_dir)`` also fix the data order and drop dropout and batch
  statistics, to compare distributed runs with one device.
- ``h5_arrays(path)``: {name: array} of a ``.weights.h5`` checkpoint.
- ``run_main(args, ...)``: runs ``python -m experiments.main`` in a fresh process (the
  README's command line), returns the CompletedProcess; with ``fault_injection=True``
  the same main with the callbacks of `fault_injection` available to gin.
- ``run_in_process(configs, bindings, workdir)``: parse_gin + run_experiment in this
  process (gin config cleared before), returns the metrics dict.
"""

import os
import subprocess
import sys

import gin

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(TESTS_DIR))
FAULT_INJECTION_MAIN = os.path.join(TESTS_DIR, "main_with_fault_injection.py")

FRONTEND_CONFIGS = ("leaf", "leaf_custom", "mel", "mel_pcen", "sincnet", "sincnet_plus", "tfbanks")


def tiny_bindings(data_dir, epochs=1):
    """Bindings for a seconds-long run on synthetic_commands/tiny."""
    return [
        "load_task.dataset = 'synthetic_commands/tiny'",
        f"load_task.data_dir = '{data_dir}'",
        "load_task.batch_size = 8",
        "load_task.eval_batch_size = 20",
        "load_task.shuffle_buffer = 64",
        f"train.num_epochs = {epochs}",
        "train.steps_per_epoch = 2",
        "train.learning_rate = 1e-3",
        "train.verbose = 2",
        "ConvNet.filters = [4, 4]",
        "PANN.depth = 1",
        "export.tflite = False",
        # model.onnx is checked by test_export_litert and test_export_onnx.
        "export.onnx = False",
    ]


def deterministic_bindings(data_dir, epochs=2):
    """`tiny_bindings` with a fixed data order, no dropout and no batch statistics (which
    replicas compute apart), so distributed runs can be compared with one device."""
    return tiny_bindings(data_dir, epochs=epochs) + [
        "load_task.shuffle_buffer = 0",
        "ConvNet.dropout = 0.0",
        "ConvNet.use_batch_norm = False",
        "AudioClassifier.use_batch_norm = False",
        "train.steps_per_epoch = None",
    ]


def h5_arrays(path):
    """{dataset name: array} of every dataset in a Keras ``.weights.h5`` file."""
    import h5py  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel

    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, item: (
                arrays.__setitem__(name, np.asarray(item[()]))
                if isinstance(item, h5py.Dataset)
                else None
            )
        )
    return arrays


def subprocess_env(**extra):
    env = dict(
        os.environ,
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    env.update(extra)
    return env


def _run_python(arguments, timeout, env):
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=REPO_ROOT,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_main(args, timeout=300, fault_injection=False, **env):
    """Runs ``python -m experiments.main *args`` from the repository root.

    With ``fault_injection=True`` it runs `main_with_fault_injection.py` instead, so the
    gin bindings may use ``@CrashAfterBatches()`` and ``@InjectNaNAfterBatches()``.
    """
    program = [FAULT_INJECTION_MAIN] if fault_injection else ["-m", "experiments.main"]
    return _run_python(program + list(args), timeout, env)


def run_script(code, timeout=300, **env):
    """Runs a Python snippet in a fresh process from the repository root."""
    return _run_python(["-c", code], timeout, env)


def gin_args(configs, bindings):
    args = [f"--gin_config=gin/{config}.gin" for config in configs]
    args += [f"--gin_bindings={binding}" for binding in bindings]
    return args


def run_in_process(configs, bindings, workdir):
    """parse_gin + run_experiment in this process; returns the metrics dict."""
    from experiments import experiment  # pylint: disable=import-outside-toplevel

    gin.clear_config()
    try:
        experiment.parse_gin(
            [os.path.join(REPO_ROOT, "gin", f"{c}.gin") for c in configs], bindings
        )
        return experiment.run_experiment(workdir=str(workdir))
    finally:
        gin.clear_config()


def describe(process):
    """Last lines of a subprocess's output, for assertion messages."""
    return "\n".join((process.stdout + process.stderr).splitlines()[-40:])
