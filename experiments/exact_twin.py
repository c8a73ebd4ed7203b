"""The exact-engine twin of a model with band-limited LEAF frontends, for deployment.

The band-limited engine (``Leaf(filterbank="band_limited")``) computes LEAF's Gabor
filterbank and Gaussian pooling from complex block spectra: TFLite's builtin ops have no
complex FFT and tf2onnx cannot convert its FFT arithmetic, so neither runtime can run it.
It approximates the exact engine with the same weights (~1e-3 relative on the features,
benchmarks/README.md), so what those runtimes get instead is the function the band-limited
model approximates: `exact_twin` rebuilds the model with ``filterbank="fused"`` and copies
its weights (the two engines' variables line up one to one: Gabor parameters, pooling
widths, then the rest). The exact engine also streams with 20 ms of latency where the
band-limited one needs 320 ms (`leaf_keras.streaming`).

`twin_error` measures how far the twin is from the model on a fixed probe, so an export
records what deploying the twin costs.
"""

import keras
import numpy as np
from absl import logging

import leaf_keras

EXACT_ENGINE = "fused"


def has_band_limited_engine(model):
    """Whether `model` (a layer or model) computes a filterbank with the band-limited engine."""
    return bool(leaf_keras.band_limited.band_limited_stages(model))


def _with_exact_engine(config):
    """A copy of the serialized `config` in which every band-limited filterbank is exact."""
    if isinstance(config, dict):
        config = {key: _with_exact_engine(value) for key, value in config.items()}
        if config.get("filterbank") == "band_limited":
            config["filterbank"] = EXACT_ENGINE
            # The tolerance sets the band-limited engine's accuracy; the exact one refuses it.
            config.pop("tolerance", None)
        return config
    if isinstance(config, (list, tuple)):
        return type(config)(_with_exact_engine(value) for value in config)
    return config


def exact_twin(model):
    """`model` with its band-limited filterbanks computed by the exact engine.

    Args:
        model: a built Keras layer or model (an `AudioClassifier`, a `Leaf` frontend).

    Returns:
        `model` itself when it has no band-limited engine; otherwise a new built model of
        the same class and config but ``filterbank="fused"``, holding `model`'s weights.

    Raises:
        ValueError: for an unbuilt model, or a twin whose weights do not line up with
            `model`'s (a model class whose config does not rebuild it).
    """
    if not has_band_limited_engine(model):
        return model
    if not model.built:
        raise ValueError("exact_twin needs a built model: call it on a batch first.")
    serialized = _with_exact_engine(keras.saving.serialize_keras_object(model))
    twin = keras.saving.deserialize_keras_object(serialized)
    if not twin.built:
        raise ValueError(
            f"exact_twin could not build a copy of {model.name!r} from its config "
            "(it has no build_config)."
        )
    ours = [tuple(w.shape) for w in model.weights]
    theirs = [tuple(w.shape) for w in twin.weights]
    if ours != theirs:
        raise ValueError(
            f"The exact twin of {model.name!r} does not hold the same weights: "
            f"{len(ours)} variables {ours[:4]}... against {len(theirs)} {theirs[:4]}..."
        )
    twin.set_weights(model.get_weights())
    if has_band_limited_engine(twin):
        raise ValueError(f"{model.name!r}: a band-limited engine is not set by its config.")
    return twin


def probe_waveforms(num_samples, sample_rate=16000, batch_size=2):
    """A fixed batch of test signals: tones, a chirp and noise at speech-like levels."""
    rng = np.random.default_rng(20210121)
    t = np.arange(num_samples) / sample_rate
    tones = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 2500.0 * t)
    chirp = 0.3 * np.sin(2 * np.pi * (100.0 + 1900.0 * t / max(t[-1], 1e-9)) * t)
    clips = [tones, chirp][:batch_size]
    clips += [np.zeros(num_samples)] * (batch_size - len(clips))
    noise = 0.02 * rng.standard_normal((batch_size, num_samples))
    return (np.stack(clips) + noise).astype("float32")


def _outputs(model, waveforms):
    outputs = model(waveforms, training=False)
    values = outputs.values() if isinstance(outputs, dict) else [outputs]
    return [keras.ops.convert_to_numpy(v) for v in values]


def twin_error(model, twin, num_samples, sample_rate=16000):
    """Max |twin - model| / max |model| of the outputs on `probe_waveforms` (0 if the same)."""
    if twin is model:
        return 0.0
    waveforms = probe_waveforms(num_samples, sample_rate)
    error = 0.0
    for ours, theirs in zip(_outputs(model, waveforms), _outputs(twin, waveforms)):
        error = max(error, float(np.max(np.abs(theirs - ours)) / max(np.max(np.abs(ours)), 1e-30)))
    return error


def deployable(model, what, num_samples=None):
    """`(twin, error)`: what a runtime without complex FFTs runs for `model`, and how far
    it is from it on the probe of `num_samples` (default: one second at the frontend's
    rate); logs a warning when it is a twin. `what` names the export in the warning."""
    twin = exact_twin(model)
    sample_rate = getattr(getattr(model, "frontend", None) or model, "sample_rate", 16000)
    num_samples = int(num_samples or sample_rate)
    error = twin_error(model, twin, num_samples, sample_rate)
    if twin is not model:
        logging.warning(
            "%s: %r computes with the band-limited engine, which has no form without complex "
            "FFTs; exporting its exact-engine twin (same weights, filterbank=%r): max relative "
            "difference %.2g on a %d-sample probe.",
            what,
            model.name,
            EXACT_ENGINE,
            error,
            num_samples,
        )
    return twin, error


def description(error):
    """The ``export_info`` entry of an exported twin."""
    return {"filterbank": EXACT_ENGINE, "max_relative_difference": error}
