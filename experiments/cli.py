"""What `experiments.main` prints: the ``--help`` page, quiet logs, the final summary.

TensorFlow's C++ libraries log while they load, before their log level applies (oneDNN
and "Could not find cuda drivers" notices), and on a machine without an NVIDIA driver
their CUDA plugin logs a ``failed call to cuInit`` error when the devices are first
listed. None of it concerns a CPU run, so `quiet_tensorflow` imports TensorFlow and lists
its devices with the process's stderr redirected (and replayed if the import fails), and
keeps TensorFlow's later C++ logs to errors; ``--verbosity=1`` keeps everything.
"""

import contextlib
import glob
import os
import sys
import tempfile
import textwrap

# absl's verbosity from which TensorFlow's own logs are shown (INFO from XLA, the TFLite
# converter, device setup).
VERBOSE = 1


@contextlib.contextmanager
def _stderr_to_file():
    """Points file descriptor 2 at a temporary file; replays it if the body raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_tensorflow(verbosity: int = 0) -> None:
    """Imports TensorFlow and sets up its devices without their start-up logs.

    Call it before anything imports TensorFlow. With `verbosity` >= VERBOSE it does
    nothing, and a TF_CPP_MIN_LOG_LEVEL the user set is kept.
    """
    if verbosity >= VERBOSE or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_to_file():
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        tf.config.list_physical_devices()


class _LibraryNotices:
    """A logging filter that drops TensorFlow Datasets' records below ERROR.

    TFDS logs every split it opens at INFO and notes about its cache folders at WARNING;
    none of it needs the user. This package's own warnings (skipped files, resumed runs)
    stay.
    """

    def filter(self, record):
        return record.levelno >= 40 or "tensorflow_datasets" not in record.pathname


def quiet_libraries(verbosity: int = 0) -> None:
    """Hides TFDS's routine logs below `VERBOSE` verbosity."""
    if verbosity < VERBOSE:
        from absl import logging  # pylint: disable=import-outside-toplevel

        logging.get_absl_handler().addFilter(_LibraryNotices())


def _first_sentence(path: str, width: int = 72) -> str:
    """The first sentence of a gin file's leading comment, cut to `width` characters."""
    words = []
    with open(path) as f:
        for line in f:
            if not line.startswith("#"):
                break
            words += line.lstrip("#").split()
    text = " ".join(words)
    for end in (". ", "; "):
        if end in text:
            text = text[: text.index(end)]
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def gin_files(repo_root: str) -> list:
    """(path relative to the repository, first comment line) of every shipped gin file."""
    paths = sorted(glob.glob(os.path.join(repo_root, "gin", "*.gin")))
    paths += sorted(glob.glob(os.path.join(repo_root, "gin", "datasets", "*.gin")))
    return [(os.path.relpath(p, repo_root), _first_sentence(p)) for p in paths]


def help_text(module_doc: str, flags_help: str, repo_root: str) -> str:
    """The ``--help`` page: usage, flags, gin files, datasets and strategies."""
    # Imported here: both import TensorFlow, which quiet_tensorflow must precede.
    from experiments import data  # pylint: disable=import-outside-toplevel
    from experiments import distribution  # pylint: disable=import-outside-toplevel

    def wrapped(words):
        return textwrap.fill(
            ", ".join(words), width=96, initial_indent="  ", subsequent_indent="  "
        )

    files = gin_files(repo_root)
    width = max(len(path) for path, _ in files)
    gin_lines = [f"  {path:<{width}}  {comment}" for path, comment in files]
    return "\n".join(
        [
            module_doc.strip(),
            "",
            "Flags:",
            flags_help.rstrip(),
            "",
            "Gin files (--gin_config; read in order on top of gin/common.gin):",
            *gin_lines,
            "",
            "Datasets (--gin_bindings=\"load_task.dataset = 'NAME'\"):",
            wrapped(data.LOADERS),
            "",
            "Strategies (--strategy):",
            wrapped(distribution.STRATEGIES),
            "",
        ]
    )


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _metric_lines(metrics: dict, task: str = "") -> list:
    if "tasks" in metrics:  # multi-task: one line per task
        split = metrics.get("split", "test")
        return [
            line
            for name, scores in metrics["tasks"].items()
            for line in _metric_lines({"split": split, **scores}, f"task {name}, ")
        ]
    names = [key for key in ("accuracy", "mAP", "AUC", "d_prime") if key in metrics]
    if not names:
        return []
    values = ", ".join(f"{key} {metrics[key]:.4f}" for key in names)
    return [
        f"Test ({task}{metrics.get('split', 'test')} split, "
        f"{metrics.get('num_examples', '?')} clips): {values}"
    ]


def summary(workdir: str, metrics: dict, seconds: float, export_info: dict | None) -> str:
    """The lines `experiments.main` prints when a run ends."""
    lines = ["", f"Finished in {_duration(seconds)}. Workdir: {workdir}"]
    lines += _metric_lines(metrics)
    best = metrics.get("checkpoint_info") or {}
    if best.get("epoch"):
        lines.append(
            f"Best epoch: {best['epoch']} ({best.get('monitor')} = {best.get('value'):.4f}), "
            f"used for the test and the export."
        )
    rows = [
        ("checkpoints", os.path.join(workdir, "checkpoints")),
        ("metrics", os.path.join(workdir, "metrics.json")),
        ("training log", os.path.join(workdir, "training_log.csv")),
        ("report", os.path.join(workdir, "report")),
    ]
    if export_info:
        rows.append(("SavedModel", export_info["saved_model"]))
        for key, name in (("tflite", "LiteRT model"), ("keras", "Keras model")):
            if export_info.get(key):
                rows.append((name, export_info[key]))
        if export_info.get("onnx"):
            rows.append(("ONNX model", export_info["onnx"]["path"]))
    lines += [f"  {name:<13} {path}" for name, path in rows if os.path.exists(path)]
    if export_info:
        lines.append(
            "Serve: tf.saved_model.load(path).signatures['serving_default'](waveform=...)"
            " (README, Quickstart)"
        )
    lines.append(f"TensorBoard: tensorboard --logdir {os.path.join(workdir, 'tensorboard')}")
    return "\n".join(lines)
