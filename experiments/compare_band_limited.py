r"""Compares LEAF's band-limited mode with the exact path, with trained weights.

`Leaf(band_limited=True)` computes the Gabor filtering, squared modulus and
Gaussian pooling at decimated rates; its weights are those of the exact
`Leaf()`. This tool takes the frontend weights of a trained classifier (a
`best.weights.h5` / `last.weights.h5` checkpoint written by
`experiments.main`, with either mode), runs both modes with them on WAV files
and prints the relative error of the band-limited output (after PCEN) against
the exact one: max |fast - exact| / max |exact| per clip, its median and its
worst value over the clips.

Usage (from the repository root):

    python -m experiments.compare_band_limited \
        --checkpoint /tmp/runs/leaf_bl_tts/checkpoints/best.weights.h5 \
        --audio_glob '../shared/data/tts_commands/*/*.wav' --max_files 300
"""

import glob
import json

import h5py
import numpy as np
from absl import app
from absl import flags

import leaf_keras
from experiments.plot_frontends import read_wav

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint",
    None,
    "Keras .weights.h5 checkpoint of an AudioClassifier "
    "with a LEAF frontend (exact or band-limited).",
    required=True,
)
_AUDIO_GLOB = flags.DEFINE_string(
    "audio_glob", None, "Glob of mono 16-bit 16 kHz WAV files.", required=True
)
_MAX_FILES = flags.DEFINE_integer("max_files", 300, "Compare on at most this many files.")
_JSON = flags.DEFINE_string("json", None, "Also write the results here.")


def read_frontend_weights(path):
    """Gabor, pooling and PCEN weights of the `frontend` of a checkpoint.

    Returns:
        A dict with "gabor" `(n, 2)`, "pooling" `(1, 1, n, 1)`, "pcen" (the
        PCEN layer's own variables, in order) and "ema" (its smoother's).
    """
    with h5py.File(path, "r") as store:
        if "frontend" not in store:
            raise ValueError(
                f"{path} has no 'frontend' group: not a checkpoint of an AudioClassifier."
            )
        layers = store["frontend"]["layers"]
        weights = {}
        for name, group in layers.items():
            own = group.get("vars")
            values = [own[str(i)][()] for i in range(len(own))] if own is not None else []
            if name.startswith("band_limited_gabor_pooling"):
                weights["gabor"], weights["pooling"] = values
            elif name == "filterbank":
                # The filterbank stage holds the convolution and pooling.
                weights["gabor"] = group["conv"]["vars"]["0"][()]
                weights["pooling"] = group["pooling"]["vars"]["0"][()]
            elif name.startswith("gabor_conv1d"):
                weights["gabor"] = values[0]
            elif name.startswith("gaussian_lowpass"):
                weights["pooling"] = values[0]
            elif name.startswith("pcen_layer"):
                weights["pcen"] = values
                ema = group["ema"]["vars"]
                weights["ema"] = [ema[str(i)][()] for i in range(len(ema))]
    missing = {"gabor", "pooling", "pcen"} - set(weights)
    if missing:
        raise ValueError(
            f"{path}: no {sorted(missing)} weights in the frontend; is it a default LEAF frontend?"
        )
    return weights


def build_pair(weights):
    """Exact and band-limited `Leaf` frontends holding the given weights."""
    n_filters = weights["gabor"].shape[0]
    exact = leaf_keras.Leaf(n_filters=n_filters, filterbank="fused")
    fast = leaf_keras.Leaf(n_filters=n_filters, band_limited=True)
    for frontend in (exact, fast):
        frontend.build((None, 16000))
        frontend.compression_fn.ema.set_weights(weights["ema"])
        # The PCEN layer's own variables, in the order a checkpoint stores
        # them (its smoother's are set above).
        frontend.compression_fn.load_own_variables(
            {str(i): value for i, value in enumerate(weights["pcen"])}
        )
    exact.complex_conv.set_weights([weights["gabor"]])
    exact.pooling.set_weights([weights["pooling"]])
    # set_weights re-plans the decimations for the trained parameters.
    fast.band_limited_filterbank.set_weights([weights["gabor"], weights["pooling"]])
    return exact, fast


def main(argv):
    del argv
    weights = read_frontend_weights(_CHECKPOINT.value)
    exact, fast = build_pair(weights)
    paths = sorted(glob.glob(_AUDIO_GLOB.value))[: _MAX_FILES.value]
    if not paths:
        raise ValueError(f"No file matches {_AUDIO_GLOB.value!r}.")
    errors = []
    for path in paths:
        clip = read_wav(path)[None, :]
        expected = np.asarray(exact(clip))
        actual = np.asarray(fast(clip))
        errors.append(float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected))))
    errors = np.asarray(errors)
    results = {
        "checkpoint": _CHECKPOINT.value,
        "files": len(paths),
        "decimations": fast.band_limited_filterbank.planned_decimations.tolist(),
        "median_relative_error": float(np.median(errors)),
        "max_relative_error": float(np.max(errors)),
        "worst_file": paths[int(np.argmax(errors))],
    }
    print(json.dumps(results, indent=1))
    if _JSON.value:
        with open(_JSON.value, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    app.run(main)
