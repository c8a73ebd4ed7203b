"""Loads variables saved from the original leaf-audio frontends.

The original (TensorFlow 2 / Keras 2) frontends name their variables e.g.
`kernel` (Gabor or sinc parameters, created outside any name scope),
`leaf/learnable_pooling/kernel`, `leaf/PCEN/alpha`, `leaf/PCEN/EMA/smooth`,
`tfbanks/tfbanks_complex_conv/kernel`,
`tfbanks/learnable_pooling/conv2d/kernel`,
`sincnet/layer_normalization/gamma` or, for a fixed PCEN smoother,
`sincnet_plus/PCEN/simple_rnn/simple_rnn_cell/kernel`. `load_leaf_audio_weights`
maps such a dictionary onto a `leaf_keras` frontend.
"""

import re

import keras
import numpy as np

from leaf_keras import mel_frontend
from leaf_keras import pooling
from leaf_keras import postprocessing

_FRONTEND_PREFIXES = (
    "leaf",
    "tfbanks",
    "sincnet",
    "sincnet_plus",
    "mel",
    "mel_pcen",
    "mel_filterbanks",
)
_RNN_KERNEL = "PCEN/simple_rnn/simple_rnn_cell/kernel"
_RNN_RECURRENT = "PCEN/simple_rnn/simple_rnn_cell/recurrent_kernel"


def _canonical(name, frontend_name):
    """Original variable name -> name relative to the frontend."""
    name = re.sub(r":\d+$", "", name)
    prefixes = sorted({frontend_name, *_FRONTEND_PREFIXES}, key=len, reverse=True)
    for prefix in prefixes:
        if name.startswith(prefix + "/"):
            name = name[len(prefix) + 1 :]
            break
    if name == "kernel":  # the original's Gabor/Sinc kernel had no scope
        name = "tfbanks_complex_conv/kernel"
    name = re.sub(r"^layer_normalization(_\d+)?/", "layer_normalization/", name)
    name = re.sub(r"^learnable_pooling/conv2d(_\d+)?/", "learnable_pooling/conv2d/", name)
    return name


def _pcen_targets(layer, prefix):
    targets = {
        f"{prefix}/alpha": layer.alpha,
        f"{prefix}/delta": layer.delta,
        f"{prefix}/root": layer.root,
    }
    if layer.learn_smooth_coef:
        targets[f"{prefix}/EMA/smooth"] = layer.ema.smooth
    else:
        targets[f"{prefix}/simple_rnn"] = layer.ema.smooth
    return targets


def leaf_audio_variable_map(frontend):
    """Original-style names (relative to the frontend) of its variables.

    Args:
        frontend: a built `leaf_keras` frontend.

    Returns:
        A dict from names such as "tfbanks_complex_conv/kernel",
        "learnable_pooling/kernel", "PCEN/alpha", "PCEN/EMA/smooth" or
        "PCEN/simple_rnn" (the fixed smoother) to keras variables.
    """
    targets = {}
    if isinstance(frontend, mel_frontend.MelFilterbanks):
        compression = frontend.compression_fn
        if isinstance(compression, postprocessing.PCENLayer):
            targets.update(_pcen_targets(compression, "PCEN"))
        return targets
    if frontend.preemp_conv is not None:
        targets["tfbanks_preemp/kernel"] = frontend.preemp_conv.kernel
    if frontend.complex_conv is not None:
        targets["tfbanks_complex_conv/kernel"] = frontend.complex_conv.kernel
    band_limited = frontend.band_limited_filterbank
    if band_limited is not None:
        # The band-limited stage holds the exact stages' two weights, under their names.
        targets["tfbanks_complex_conv/kernel"] = band_limited.gabor_kernel
        targets["learnable_pooling/kernel"] = band_limited.pooling_kernel
    pool = frontend.pooling
    if isinstance(pool, pooling.LearnablePooling1D):
        targets["learnable_pooling/conv2d/kernel"] = pool.kernel
    elif getattr(pool, "kernel", None) is not None:
        targets["learnable_pooling/kernel"] = pool.kernel
    compression = frontend.compression_fn
    if isinstance(compression, postprocessing.PCENLayer):
        targets.update(_pcen_targets(compression, "PCEN"))
    elif isinstance(compression, keras.layers.LayerNormalization):
        targets["layer_normalization/gamma"] = compression.gamma
        targets["layer_normalization/beta"] = compression.beta
    norm = frontend.instance_norm
    if norm is not None and norm.gamma is not None:
        targets["tfbanks_instancenorm/gamma"] = norm.gamma
    if norm is not None and norm.beta is not None:
        targets["tfbanks_instancenorm/beta"] = norm.beta
    return targets


def _smoother_from_simple_rnn(kernel, recurrent, channels):
    """Per-channel EMA coefficient of a SimpleRNN with diagonal kernels."""
    kernel = np.asarray(kernel, np.float64)
    recurrent = np.asarray(recurrent, np.float64)
    expected = (channels, channels)
    if kernel.shape != expected or recurrent.shape != expected:
        raise ValueError(
            f"SimpleRNN smoother kernels must be {expected}, got "
            f"{kernel.shape} and {recurrent.shape}."
        )
    coefficient = np.diag(kernel)
    off_diagonal = (
        np.abs(kernel - np.diag(coefficient)).max()
        + np.abs(recurrent - np.diag(np.diag(recurrent))).max()
    )
    mismatch = np.abs(np.diag(recurrent) - (1.0 - coefficient)).max()
    if off_diagonal > 1e-6 or mismatch > 1e-6:
        raise ValueError(
            "The SimpleRNN smoother is not an exponential moving average "
            "(kernel = s I, recurrent_kernel = (1 - s) I); off-diagonal "
            f"{off_diagonal:.3g}, diagonal mismatch {mismatch:.3g}."
        )
    return coefficient


def load_leaf_audio_weights(frontend, weights):
    """Assigns variables saved from leaf-audio to a `leaf_keras` frontend.

    Args:
        frontend: a `leaf_keras` frontend (built or not; it is built on a
            dummy input if needed).
        weights: dict from original variable names (with or without the
            frontend prefix, e.g. "kernel" or "leaf/PCEN/alpha") to numpy
            arrays.

    Returns:
        A dict from the given names to the keras variables they were
        assigned to (a fixed smoother's two SimpleRNN kernels both map to the
        "smooth" variable).

    Raises:
        ValueError: naming every unknown name, every frontend variable with
            no value, and every value of the wrong shape.
    """
    if not frontend.built:
        window = getattr(frontend, "window_size", 1)
        frontend(np.zeros((1, max(window, 1)), np.float32))
    targets = leaf_audio_variable_map(frontend)
    assignments = {}
    problems = []
    by_canonical = {}
    for name, value in weights.items():
        key = _canonical(name, frontend.name)
        by_canonical.setdefault(key, []).append((name, value))
    rnn = {
        key: by_canonical.pop(key)[0]
        for key in (_RNN_KERNEL, _RNN_RECURRENT)
        if key in by_canonical
    }
    if rnn:
        if "PCEN/simple_rnn" not in targets or len(rnn) != 2:
            problems.append(
                f"unexpected SimpleRNN smoother weights {sorted(n for n, _ in rnn.values())}"
                " (the frontend's PCEN learns its smoothing coefficient, or "
                "one of kernel/recurrent_kernel is missing)"
            )
        else:
            variable = targets["PCEN/simple_rnn"]
            try:
                coefficient = _smoother_from_simple_rnn(
                    rnn[_RNN_KERNEL][1], rnn[_RNN_RECURRENT][1], variable.shape[0]
                )
                assignments[rnn[_RNN_KERNEL][0]] = (variable, coefficient)
                assignments[rnn[_RNN_RECURRENT][0]] = (variable, coefficient)
            except ValueError as error:
                problems.append(str(error))
    for key, entries in by_canonical.items():
        if len(entries) > 1:
            problems.append(f"several names map to {key!r}: {[name for name, _ in entries]}")
            continue
        name, value = entries[0]
        if key not in targets:
            problems.append(f"unknown weight {name!r}")
            continue
        variable = targets[key]
        value = np.asarray(value)
        if tuple(value.shape) != tuple(variable.shape):
            problems.append(
                f"{name!r} has shape {value.shape}, expected "
                f"{tuple(variable.shape)} for {variable.path}"
            )
            continue
        assignments[name] = (variable, value)
    assigned = {id(variable) for variable, _ in assignments.values()}
    for key, variable in targets.items():
        if id(variable) not in assigned:
            label = (
                "PCEN/simple_rnn/simple_rnn_cell/{kernel,recurrent_kernel}"
                if key == "PCEN/simple_rnn"
                else key
            )
            problems.append(f"no value for {label} ({variable.path})")
    if problems:
        raise ValueError(
            f"Cannot load leaf-audio weights into {frontend.name!r}: "
            + "; ".join(problems)
            + f". Known names: {sorted(targets)}."
        )
    for variable, value in assignments.values():
        variable.assign(np.asarray(value, dtype=variable.dtype))
    if getattr(frontend, "band_limited_filterbank", None) is not None:
        frontend.band_limited_filterbank.update_band_plan()  # plans from the new Gabor weights
    return {name: variable for name, (variable, _) in assignments.items()}
