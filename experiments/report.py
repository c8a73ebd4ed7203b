"""A training report as PNG plots, written next to ``metrics.json``.

`write_report` writes into ``<workdir>/report/``:

* ``filters.png`` — LEAF's learned Gabor center frequencies and bandwidths (Hz) per
  filter against their mel initialization, and how far each moved (frontends with
  Gabor filters: `leaf_keras.frontend.Leaf`, with any filterbank engine).
* ``pooling_pcen.png`` — the Gaussian lowpass pooling width of every channel and the
  PCEN parameters (alpha, delta, root, smoothing coefficient) against their initial
  values; only the panels whose layers the frontend has (MelPCEN: PCEN only; log-mel
  filterbanks: no plot).
* ``training_curves.png`` — loss and metrics per epoch, train and validation, from
  ``<workdir>/training_log.csv`` (`read_training_log`).
* ``confusion_matrix.png`` (single-label) or ``per_class_ap.png`` (multi-label), from the
  labels and logits of the evaluated split.

The initial values are those of the same configuration: by default the frontend is
rebuilt from its own config (`initial_frontend_of`), so its initializers (GaborInit,
Constant(0.4), the PCEN constants) give the weights training started from without
storing anything. Pass ``initial_frontend`` when training started from other weights
(e.g. a frontend loaded from leaf-audio's checkpoints). Plotted values are the effective
ones, after the clipping that the layers apply (Gabor parameters, pooling width in
[2 / K, 0.5], PCEN alpha <= 1, root >= 1, smoothing in [0, 1]).

The data behind each plot comes from a public function (`gabor_parameters`,
`pooling_widths`, `pcen_parameters`, `read_training_log`, `confusion_matrix`,
`per_class_average_precision`), so it can be tested and reused. Figures are drawn with
`matplotlib.figure.Figure` and the Agg canvas, without pyplot: nothing global, no
display, safe in threads.
"""

import csv
import math
import os

import keras
import numpy as np
from absl import logging
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from experiments import metrics as metrics_lib
from experiments.summaries import gabor_parameters  # Re-exported: part of this API.
from leaf_keras import band_limited
from leaf_keras import initializers
from leaf_keras import pooling
from leaf_keras import postprocessing

REPORT_DIR = "report"
TRAINING_LOG = "training_log.csv"
DPI = 110
# Multi-label: all classes are drawn up to this many, else the best and worst half each.
MAX_AP_BARS = 40
# Class names longer than this are shortened on the axes.
MAX_NAME_CHARS = 28

_LEARNED_COLOR = "tab:blue"
_INITIAL_COLOR = "0.45"
_TRAIN_COLOR = "tab:blue"
_VALIDATION_COLOR = "tab:orange"

# Display names of Keras's metric names (CSVLogger columns), with their units.
_METRIC_LABELS = {
    "loss": "loss (cross-entropy)",
    "sparse_categorical_accuracy": "accuracy (fraction)",
    "categorical_accuracy": "accuracy (fraction)",
    "accuracy": "accuracy (fraction)",
    "auc": "ROC AUC (class mean)",
}
# Metrics where lower is better (the best validation epoch is the minimum).
_LOWER_IS_BETTER = ("loss",)


# --------------------------------------------------------------------------------------
# Data behind the plots.
# --------------------------------------------------------------------------------------


def _sublayers(layer):
    """`layer` and all its nested layers, depth first."""
    if hasattr(layer, "_flatten_layers"):
        return list(layer._flatten_layers(include_self=True, recursive=True))
    return [layer] + list(getattr(layer, "layers", []))


def _find_layer(frontend, classes):
    if frontend is None:
        return None
    for layer in _sublayers(frontend):
        if isinstance(layer, classes):
            return layer
    return None


def _numpy(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), np.float64)


def pooling_widths(frontend):
    """The Gaussian lowpass pooling width of every channel, as used (clipped).

    Found by type: a `leaf_keras.pooling.GaussianLowpass` or the pooling weights of a
    `BandLimitedGaborPooling` stage. The width sigma is relative to half the window,
    `w[n] = exp(-0.5 ((n - (K - 1) / 2) / (sigma (K - 1) / 2))^2)`, clipped to
    [2 / K, 0.5]; ``std_ms`` is the same width as the standard deviation of the window in
    milliseconds, `sigma (K - 1) / 2 / sample_rate`.

    Args:
        frontend: a frontend layer (or None).

    Returns:
        dict with ``sigma`` and ``std_ms`` (numpy ``(channels,)``) and ``trainable``
        (bool), or None if the frontend has no Gaussian pooling.
    """
    layer = _find_layer(frontend, (pooling.GaussianLowpass, band_limited.BandLimitedGaborPooling))
    if layer is None:
        return None
    if not layer.built:
        return None
    if isinstance(layer, band_limited.BandLimitedGaborPooling):
        kernel, trainable = layer.pooling_kernel, layer.learn_pooling
    else:
        kernel, trainable = layer.kernel, layer.trainable
    size = layer.kernel_size
    sigma = np.clip(_numpy(kernel).reshape(-1), 2.0 / size, 0.5)
    sample_rate = getattr(frontend, "sample_rate", None) or getattr(layer, "sample_rate", None)
    samples_per_sigma = (size - 1) / 2.0
    std_ms = sigma * samples_per_sigma * (1000.0 / sample_rate if sample_rate else 1.0)
    return {"sigma": sigma, "std_ms": std_ms, "trainable": bool(trainable)}


def pcen_parameters(frontend):
    """The PCEN parameters of every channel, as used (clipped).

    Found by type (`leaf_keras.postprocessing.PCENLayer`): ``alpha`` (min(alpha, 1)),
    ``delta``, ``root`` (max(root, 1)) and ``smooth``, the smoothing coefficient of the
    moving average (clipped to [0, 1], repeated per channel when it is shared).

    Args:
        frontend: a frontend layer (or None).

    Returns:
        dict name -> numpy ``(channels,)`` for the four parameters, plus ``trainable``:
        dict name -> bool; or None if the frontend has no (built) PCEN.
    """
    layer = _find_layer(frontend, postprocessing.PCENLayer)
    if layer is None or not layer.built:
        return None
    alpha = np.minimum(_numpy(layer.alpha), 1.0)
    root = np.maximum(_numpy(layer.root), 1.0)
    delta = _numpy(layer.delta)
    smooth = np.clip(_numpy(layer.ema.smooth), 0.0, 1.0)
    smooth = np.broadcast_to(smooth, alpha.shape).copy()
    trained = layer.learn_alpha_delta_root
    return {
        "alpha": alpha,
        "delta": delta,
        "root": root,
        "smooth": smooth,
        "trainable": {
            "alpha": trained,
            "delta": trained,
            "root": trained,
            "smooth": layer.learn_smooth_coef,
        },
    }


def initial_frontend_of(frontend):
    """A fresh copy of `frontend` with its initial weights (rebuilt from its config).

    Returns None (and logs why) if the frontend cannot be rebuilt.
    """
    if frontend is None:
        return None
    try:
        fresh = type(frontend).from_config(frontend.get_config())
        _ensure_built(fresh)
        return fresh
    except Exception as error:  # pylint: disable=broad-except
        logging.warning("report: could not rebuild %s from its config: %s", frontend.name, error)
        return None


def _ensure_built(frontend):
    if not frontend.built:
        # Waveform frontends build for any batch and length.
        frontend.build((None, None))


def read_training_log(path):
    """Reads Keras's CSVLogger file, robust to restarts.

    `keras.callbacks.CSVLogger(append=True)` appends across restarts: a resumed run
    repeats the epochs after its last backup, and may repeat the header. Every line whose
    first field is ``epoch`` is (re)read as the header of the lines after it, lines that
    do not match it (a line cut by a crash) are skipped, and the last row of each epoch
    wins. Empty or unparsable values are NaN.

    Args:
        path: the CSV file.

    Returns:
        dict column -> numpy array, sorted by epoch: ``epoch`` (ints, 0-based as Keras
        writes them), then every other column in order of first appearance (floats).
    """
    rows, columns, header = {}, [], None
    with open(path, newline="") as handle:
        for fields in csv.reader(handle):
            fields = [field.strip() for field in fields]
            if not any(fields):
                continue
            if fields[0] == "epoch":
                header = fields
                columns.extend(name for name in header[1:] if name not in columns)
                continue
            if header is None or len(fields) != len(header):
                continue
            try:
                epoch = int(float(fields[0]))
            except ValueError:
                continue
            rows[epoch] = {name: _to_float(value) for name, value in zip(header[1:], fields[1:])}
    epochs = sorted(rows)
    log = {"epoch": np.asarray(epochs, np.int64)}
    for name in columns:
        log[name] = np.asarray([rows[e].get(name, math.nan) for e in epochs], np.float64)
    return log


def _to_float(value):
    try:
        return float(value)
    except ValueError:
        return math.nan


def confusion_matrix(labels, logits, num_classes):
    """Counts of (true class, predicted class = argmax of the logits).

    Args:
        labels: int class indices, shape [N].
        logits: scores, shape [N, num_classes].
        num_classes: C.

    Returns:
        int64 numpy array [C, C]: row = true class, column = predicted class.
    """
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"logits must be [N, C] with N = {labels.shape[0]}, got {logits.shape}.")
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels, np.argmax(logits, axis=1)), 1)
    return counts


def row_normalized(counts):
    """Each row divided by its sum (rows without examples are NaN)."""
    counts = np.asarray(counts, np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / totals, np.nan)


def per_class_average_precision(labels, logits):
    """Average precision of every class (`experiments.metrics.average_precision`).

    As in the mAP of metrics.json, a class without positive or without negative
    examples is undefined: NaN.

    Args:
        labels: multi-hot targets [N, C].
        logits: scores [N, C].

    Returns:
        float numpy array [C].
    """
    labels = np.asarray(labels)
    logits = np.asarray(logits)
    if labels.ndim != 2 or labels.shape != logits.shape:
        raise ValueError(
            f"labels and logits must both be [N, C], got {labels.shape}, {logits.shape}."
        )
    precisions = np.full(labels.shape[1], np.nan)
    for c in range(labels.shape[1]):
        positives = int(np.count_nonzero(labels[:, c]))
        if 0 < positives < labels.shape[0]:
            precisions[c] = metrics_lib.average_precision(labels[:, c], logits[:, c])
    return precisions


# --------------------------------------------------------------------------------------
# Plots.
# --------------------------------------------------------------------------------------


def _new_figure(width, height):
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    figure.savefig(path, dpi=DPI)
    figure.clear()
    return path


def _short(name):
    name = str(name)
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"


def _class_names(class_names, num_classes):
    names = list(class_names) if class_names is not None else []
    if len(names) != num_classes:
        names = [str(index) for index in range(num_classes)]
    return [_short(name) for name in names]


def _plot_against_initial(
    axis, learned, initial, ylabel, title, initial_label="initialization", legend=True
):
    index = np.arange(len(learned))
    if initial is not None:
        # Markers only where the initial values differ between channels (mel filters),
        # not on a constant line.
        varies = np.ptp(np.asarray(initial)) > 1e-6 * max(1.0, float(np.max(np.abs(initial))))
        axis.plot(
            index,
            initial,
            color=_INITIAL_COLOR,
            linestyle="--",
            marker="o" if varies else None,
            markersize=3,
            markerfacecolor="none",
            linewidth=1.2,
            label=initial_label,
            # A constant initial line goes over the learned one (visible where training
            # left a value alone); varying initial values go under the learned markers.
            zorder=3 if not varies else 1.5,
        )
    axis.plot(
        index, learned, color=_LEARNED_COLOR, marker=".", markersize=5, linewidth=1, label="learned"
    )
    axis.set_title(title)
    axis.set_ylabel(ylabel)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    if legend:
        axis.legend(loc="best", fontsize="small")


def _plot_change(axis, learned, initial, ylabel, title):
    change = np.asarray(learned) - np.asarray(initial)
    colors = np.where(change >= 0, "tab:red", "tab:blue")
    axis.bar(np.arange(len(change)), change, color=colors, width=0.8)
    axis.axhline(0.0, color="k", linewidth=0.6)
    axis.set_title(title)
    axis.set_ylabel(ylabel)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3, axis="y")


def plot_filters(learned, initial, path, name="LEAF", initial_label="mel initialization"):
    """filters.png: Gabor centers and bandwidths (Hz), learned vs initial, and the change.

    Args:
        learned: ``(centers_hz, bandwidths_hz)`` of the trained frontend.
        initial: the same at initialization, or None.
        path: the PNG file.
        name: the frontend's name, for the title.
        initial_label: what `initial` is, for the legend and title.
    """
    centers, bandwidths = learned
    columns = 2 if initial is not None else 1
    figure = _new_figure(6.0 * columns, 7.0)
    axes = figure.subplots(2, columns, squeeze=False, sharex=True)
    init_centers, init_bandwidths = initial if initial is not None else (None, None)
    _plot_against_initial(
        axes[0, 0],
        centers,
        init_centers,
        "center frequency (Hz)",
        "Gabor center frequencies",
        initial_label,
    )
    _plot_against_initial(
        axes[1, 0],
        bandwidths,
        init_bandwidths,
        "bandwidth, FWHM (Hz)",
        "Gabor bandwidths (full width at half maximum)",
        initial_label,
    )
    for axis in axes[:, 0]:
        axis.legend(loc="upper left", fontsize="small")
    if initial is not None:
        for axis, values, initial_values, what in (
            (axes[0, 1], centers, init_centers, "center frequency"),
            (axes[1, 1], bandwidths, init_bandwidths, "bandwidth"),
        ):
            mean_change = np.mean(np.abs(values - initial_values))
            _plot_change(
                axis,
                values,
                initial_values,
                "learned − initial (Hz)",
                f"Change of {what} (mean |Δ| {mean_change:.1f} Hz)",
            )
    for axis in axes[1]:
        axis.set_xlabel("filter index")
    versus = f" vs. {initial_label}" if initial is not None else ""
    figure.suptitle(f"{name}: learned Gabor filters{versus} ({len(centers)} filters)")
    return _save(figure, path)


_PCEN_PANELS = (
    ("alpha", "alpha (exponent)", "PCEN alpha: gain normalization exponent"),
    ("delta", "delta (offset)", "PCEN delta: offset before the root"),
    ("root", "r (root)", "PCEN root r: compression x^(1/r)"),
    ("smooth", "s (weight per frame)", "PCEN smoothing coefficient s of the moving average"),
)


def _fixed(trainable):
    return "" if trainable else " (not trained)"


def plot_pooling_pcen(pool, initial_pool, pcen, initial_pcen, path, name="frontend"):
    """pooling_pcen.png: pooling widths and PCEN parameters per channel, vs initial.

    Args:
        pool / initial_pool: `pooling_widths` of the trained / initial frontend (or None).
        pcen / initial_pcen: `pcen_parameters` of the trained / initial frontend (or None).
        path: the PNG file.
        name: the frontend's name, for the title.
    """
    rows = (1 if pool is not None else 0) + (2 if pcen is not None else 0)
    figure = _new_figure(12.0, 3.2 * rows + 0.4)
    grid = figure.add_gridspec(rows, 2)
    row = 0
    channel_axes = []
    if pool is not None:
        axis = figure.add_subplot(grid[0, :])
        initial = initial_pool["std_ms"] if initial_pool is not None else None
        _plot_against_initial(
            axis,
            pool["std_ms"],
            initial,
            "window std (ms)",
            "Gaussian lowpass pooling width" + _fixed(pool["trainable"]),
            legend=False,
        )
        # The learned parameter itself: sigma, relative to half the window.
        per_sigma = pool["std_ms"][0] / pool["sigma"][0]
        secondary = axis.secondary_yaxis(
            "right", functions=(lambda ms: ms / per_sigma, lambda s: s * per_sigma)
        )
        secondary.set_ylabel("sigma (fraction of half window)")
        channel_axes.append(axis)
        row = 1
    if pcen is not None:
        for index, (key, ylabel, title) in enumerate(_PCEN_PANELS):
            axis = figure.add_subplot(grid[row + index // 2, index % 2])
            initial = initial_pcen[key] if initial_pcen is not None else None
            _plot_against_initial(
                axis,
                pcen[key],
                initial,
                ylabel,
                title + _fixed(pcen["trainable"][key]),
                legend=False,
            )
            channel_axes.append(axis)
    for axis in channel_axes:
        axis.set_xlabel("channel (filter index)")
    # One legend for all panels: the same two lines everywhere.
    handles, labels = channel_axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper right", ncols=len(labels), fontsize="small")
    figure.suptitle(f"{name}: per-channel pooling and PCEN parameters, learned vs. initial")
    return _save(figure, path)


def _metric_label(name):
    return _METRIC_LABELS.get(name, name.replace("_", " "))


def plot_training_curves(log, path):
    """training_curves.png: one panel per metric (train and validation) per epoch.

    Args:
        log: `read_training_log`'s dict.
        path: the PNG file.
    """
    epochs = log["epoch"] + 1  # Keras logs 0-based epochs and prints them 1-based.
    names = [name for name in log if name != "epoch"]
    metrics = [name for name in names if not name.startswith("val_") and name != "learning_rate"]
    metrics += [name[4:] for name in names if name.startswith("val_") and name[4:] not in metrics]
    metrics.sort(key=lambda name: name != "loss")
    learning_rate = log.get("learning_rate")
    show_lr = learning_rate is not None and np.nanmax(learning_rate) > np.nanmin(learning_rate)
    panels = len(metrics) + (1 if show_lr else 0)
    figure = _new_figure(max(5.0 * panels, 6.0), 4.2)
    axes = figure.subplots(1, panels, squeeze=False, sharex=True)[0]
    for axis, metric in zip(axes, metrics):
        for key, label, color, style in (
            (metric, "train", _TRAIN_COLOR, "-"),
            (f"val_{metric}", "validation", _VALIDATION_COLOR, "--"),
        ):
            if key in log:
                axis.plot(
                    epochs, log[key], style, color=color, marker="o", markersize=4, label=label
                )
        validation = log.get(f"val_{metric}")
        if validation is not None and np.isfinite(validation).any():
            pick = np.nanargmin if metric in _LOWER_IS_BETTER else np.nanargmax
            best = int(pick(validation))
            axis.plot(
                epochs[best],
                validation[best],
                "*",
                color="tab:red",
                markersize=13,
                label=f"best validation: {validation[best]:.4g} (epoch {epochs[best]})",
                zorder=3,
            )
        axis.set_title(_metric_label(metric).split(" (")[0])
        axis.set_ylabel(_metric_label(metric))
        axis.legend(loc="best", fontsize="small")
    if show_lr:
        axis = axes[-1]
        axis.plot(epochs, learning_rate, color="k", marker="o", markersize=4)
        axis.set_yscale("log")
        axis.set_title("learning rate")
        axis.set_ylabel("learning rate (log scale)")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    figure.suptitle(f"Training curves ({len(epochs)} epochs)")
    return _save(figure, path)


def plot_confusion_matrix(counts, class_names, path):
    """confusion_matrix.png: row-normalized confusion matrix with class names.

    Args:
        counts: `confusion_matrix`'s [C, C] counts.
        class_names: C names (or None: indices).
        path: the PNG file.
    """
    counts = np.asarray(counts)
    num_classes = counts.shape[0]
    names = _class_names(class_names, num_classes)
    fractions = row_normalized(counts)
    side = float(np.clip(0.32 * num_classes + 3.5, 6.0, 16.0))
    figure = _new_figure(side + 1.2, side)
    axis = figure.subplots()
    image = axis.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=axis, shrink=0.8, label="fraction of the true class's clips")
    font = 10 if num_classes <= 12 else 9 if num_classes <= 25 else 8
    ticks = np.arange(num_classes)
    axis.set_xticks(ticks, names, rotation=90, fontsize=font)
    axis.set_yticks(ticks, names, fontsize=font)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    # The percentage in every non-empty cell (integers: they fit up to ~40 classes).
    cell_font = 9 if num_classes <= 12 else 7.5 if num_classes <= 25 else 6.5
    for true, predicted in zip(*np.nonzero(counts)):
        value = fractions[true, predicted]
        axis.text(
            predicted,
            true,
            f"{100 * value:.0f}",
            ha="center",
            va="center",
            fontsize=cell_font,
            color="white" if value > 0.5 else "black",
        )
    total = int(counts.sum())
    accuracy = np.trace(counts) / total if total else math.nan
    axis.set_title(
        f"Confusion matrix, % of each true class ({total} clips, accuracy {100 * accuracy:.1f} %)"
    )
    return _save(figure, path)


def plot_per_class_ap(precisions, labels, class_names, path):
    """per_class_ap.png: per-class average precision, sorted (best and worst if many).

    Args:
        precisions: `per_class_average_precision`'s [C] (NaN: undefined, not drawn).
        labels: the multi-hot targets [N, C] (for the positive counts).
        class_names: C names (or None: indices).
        path: the PNG file.
    """
    precisions = np.asarray(precisions, np.float64)
    names = _class_names(class_names, precisions.shape[0])
    positives = np.count_nonzero(np.asarray(labels), axis=0)
    defined = np.flatnonzero(np.isfinite(precisions))
    order = defined[np.argsort(-precisions[defined], kind="stable")]
    mean_ap = float(np.mean(precisions[defined])) if defined.size else math.nan
    skipped = precisions.size - defined.size
    if order.size > MAX_AP_BARS:
        half = MAX_AP_BARS // 2
        groups = [(f"best {half} classes", order[:half]), (f"worst {half} classes", order[-half:])]
    else:
        groups = [(f"all {order.size} classes", order)]
    bars = max(len(group) for _, group in groups)
    figure = _new_figure(6.5 * len(groups), max(3.0, 0.26 * bars + 1.6))
    axes = figure.subplots(1, len(groups), squeeze=False)[0]
    for axis, (title, group) in zip(axes, groups):
        y = np.arange(len(group))
        axis.barh(y, precisions[group], color=_LEARNED_COLOR, height=0.75)
        axis.set_yticks(y, [f"{names[c]} ({positives[c]})" for c in group], fontsize=8)
        axis.invert_yaxis()
        for position, c in zip(y, group):
            inside = precisions[c] > 0.85  # Written inside the bar's end, else after it.
            axis.text(
                precisions[c] - 0.01 if inside else precisions[c] + 0.01,
                position,
                f"{precisions[c]:.2f}",
                ha="right" if inside else "left",
                va="center",
                fontsize=7,
                color="white" if inside else "black",
            )
        if np.isfinite(mean_ap):
            axis.axvline(mean_ap, color="tab:red", linestyle="--", label=f"mAP {mean_ap:.3f}")
            axis.legend(loc="lower right", fontsize="small")
        axis.set_xlim(0.0, 1.0)
        axis.set_xlabel("average precision")
        axis.set_title(title)
        axis.grid(alpha=0.3, axis="x")
    axes[0].set_ylabel("class (positive clips)")
    note = f"; {skipped} without positives or negatives left out" if skipped else ""
    figure.suptitle(
        f"Per-class average precision (mAP {mean_ap:.3f} over {defined.size} classes{note})"
    )
    return _save(figure, path)


# --------------------------------------------------------------------------------------
# The report.
# --------------------------------------------------------------------------------------


def write_report(
    workdir,
    model,
    labels,
    logits,
    class_names,
    multi_label,
    initial_frontend=None,
    raise_errors=False,
    task_name=None,
):
    """Writes the report's PNG plots into ``<workdir>/report/``.

    Plots whose data is missing are skipped: the frontend plots when ``model.frontend``
    has no such layers (mel filterbanks), the training curves without
    ``<workdir>/training_log.csv``, the class plot when `labels` or `logits` is None.

    Args:
        workdir: the experiment's directory.
        model: the trained classifier (its ``frontend`` attribute is read), or None.
        labels: int [N] (single-label) or multi-hot [N, C] targets, or None.
        logits: [N, C] scores, or None.
        class_names: C class names (or None: indices).
        multi_label: whether the task is multi-label (per_class_ap.png instead of
            confusion_matrix.png).
        initial_frontend: the frontend with the weights training started from; by default
            the trained frontend rebuilt from its config (`initial_frontend_of`).
        raise_errors: raise a plot's error instead of logging it and going on (a report
            must not fail a finished training run).
        task_name: for one task of a multi-task run: the class plot is written as
            ``confusion_matrix_<task_name>.png`` (``per_class_ap_<task_name>.png``).

    Returns:
        dict plot name (``filters``, ``pooling_pcen``, ``training_curves``,
        ``confusion_matrix`` or ``per_class_ap``) -> path of the PNG written.
    """
    outdir = os.path.join(workdir, REPORT_DIR)
    os.makedirs(outdir, exist_ok=True)
    written = {}

    def run(name, plot):
        """Writes `name`.png with `plot(path)`; a plot returning False had no data."""
        path = os.path.join(outdir, f"{name}.png")
        try:
            if plot(path) is not False:
                written[name] = path
        except Exception:  # pylint: disable=broad-except
            if raise_errors:
                raise
            logging.exception("report: could not write %s", path)

    frontend = getattr(model, "frontend", None) if model is not None else None
    if frontend is not None and _has_learnable_stages(frontend):
        initial_label = "initialization"
        if initial_frontend is None:
            initial_frontend = initial_frontend_of(frontend)
            if isinstance(getattr(frontend, "complex_conv_init", None), initializers.GaborInit):
                initial_label = "mel initialization"
        else:
            _ensure_built(initial_frontend)
        name = _display_name(frontend)
        gabor = gabor_parameters(frontend)
        if gabor is not None:
            initial_gabor = gabor_parameters(initial_frontend)
            run(
                "filters",
                lambda path: plot_filters(gabor, initial_gabor, path, name, initial_label),
            )
        pool, pcen = pooling_widths(frontend), pcen_parameters(frontend)
        if pool is not None or pcen is not None:
            initial_pool = pooling_widths(initial_frontend)
            initial_pcen = pcen_parameters(initial_frontend)
            run(
                "pooling_pcen",
                lambda path: plot_pooling_pcen(pool, initial_pool, pcen, initial_pcen, path, name),
            )

    log_path = os.path.join(workdir, TRAINING_LOG)
    if os.path.exists(log_path):

        def curves(path):
            log = read_training_log(log_path)
            return plot_training_curves(log, path) if log["epoch"].size else False

        run("training_curves", curves)

    if labels is not None and logits is not None:
        if multi_label:

            def class_plot(path):
                precisions = per_class_average_precision(labels, logits)
                return plot_per_class_ap(precisions, labels, class_names, path)

            run(_task_plot("per_class_ap", task_name), class_plot)
        else:

            def class_plot(path):
                scores = np.asarray(logits)
                counts = confusion_matrix(labels, scores, scores.shape[1])
                return plot_confusion_matrix(counts, class_names, path)

            run(_task_plot("confusion_matrix", task_name), class_plot)
    return written


def _task_plot(name, task_name):
    return f"{name}_{task_name}" if task_name else name


def _display_name(frontend):
    name = type(frontend).__name__
    return {"Leaf": "LEAF", "MelPCEN": "Mel-PCEN"}.get(name, name)


def _has_learnable_stages(frontend):
    return (
        gabor_parameters(frontend) is not None
        or pooling_widths(frontend) is not None
        or pcen_parameters(frontend) is not None
    )
