r"""Error and cost of the band-limited engine's settings against the exact engine.

For each setting of `BandLimitedGaborPooling` (`band_stds`, `leakage`,
`interpolation_taps`; its `tolerance` argument picks one of the settings
measured here), LEAF with the band-limited engine is compared with
`Leaf(filterbank="fused")` holding the same weights: the relative error
(max |fast - exact| / max |exact|) of the output after PCEN and of the
gradients of `sum(output * cotangent)` with respect to every weight, worst
over several weight sets and inputs. The time is one compiled forward and
backward pass of a batch, median of `--repeats`.

Weight sets: the initialization, the leaf-audio reference's perturbed
weights, the widest bandwidths the Gabor constraint allows (sigma at its
lower clip) and random "trained-like" weights (center frequencies moved by up
to 10 %, bandwidths scaled by 0.5-2, pooling widths in [0.1, 0.5]). Inputs:
the reference input, a spoken word (images/speech_sample.wav) and a chirp
with noise, 1 s each.

Usage (from the repository root, TensorFlow backend):

    python benchmarks/band_limited_tolerance.py --markdown
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import scipy.io.wavfile  # noqa: E402
import tensorflow as tf  # noqa: E402

import leaf_keras  # noqa: E402

REFERENCE = os.path.join(ROOT, "tests", "data", "leaf_audio_reference.npz")
SPEECH = os.path.join(ROOT, "images", "speech_sample.wav")


def _inputs(reference):
    rate, speech = scipy.io.wavfile.read(SPEECH)
    assert rate == 16000, rate
    speech = speech.astype(np.float32) / 32768.0
    speech = np.pad(speech, (0, max(0, 16000 - len(speech))))[:16000]
    t = np.arange(16000) / 16000.0
    chirp = 0.5 * np.sin(2 * np.pi * (50 * t + 0.5 * 7850 * t**2))
    noise = 0.1 * np.random.default_rng(0).standard_normal(16000)
    inputs = [reference["input"][:, :16000], speech[None], (chirp + noise)[None]]
    return [np.asarray(x, np.float32) for x in inputs]


def _weight_sets(reference):
    pcen = ("leaf/PCEN/alpha", "leaf/PCEN/delta", "leaf/PCEN/root", "leaf/PCEN/EMA/smooth")
    names = ("kernel", "leaf/learnable_pooling/kernel") + pcen
    init = leaf_keras.Leaf(filterbank="fused")
    init.build((None, 16000))
    base = {
        "kernel": np.asarray(init.filterbank.conv.kernel.numpy()),
        "leaf/learnable_pooling/kernel": np.full((1, 1, 40, 1), 0.4, np.float32),
        **{name: reference[f"leaf/weight/{name}"] for name in pcen},
    }
    perturbed = {name: reference[f"leaf_perturbed/weight/{name}"] for name in names}
    widest = dict(base)
    widest["kernel"] = base["kernel"].copy()
    widest["kernel"][:, 1] = 4 * math.sqrt(2 * math.log(2)) / math.pi
    rng = np.random.default_rng(3)
    trained = {
        **base,
        "kernel": base["kernel"]
        * np.stack(
            [rng.uniform(0.9, 1.1, 40), np.exp(rng.uniform(np.log(0.5), np.log(2.0), 40))], axis=1
        ),
        "leaf/learnable_pooling/kernel": rng.uniform(0.1, 0.5, (1, 1, 40, 1)),
    }
    return {"init": base, "perturbed": perturbed, "widest": widest, "trained": trained}


def _load(frontend, weights):
    weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    leaf_keras.load_leaf_audio_weights(frontend, weights)


def _value_and_grads(frontend, x, cotangent):
    variables = frontend.trainable_variables

    @tf.function(jit_compile=True)
    def step(x):
        with tf.GradientTape() as tape:
            output = frontend(x)
            loss = tf.reduce_sum(output * cotangent)
        return output, tape.gradient(loss, [v.value for v in variables])

    return step


def _error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def _time(step, x, repeats):
    step(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = step(x)
        np.asarray(outputs[0])
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# From loose to tight: wider bands, lower leakage, longer interpolation together. Two
# looser than the layer's default, then the settings of its `tolerance` argument.
DEFAULT_SETTINGS = ("3:1e-2:3", "3.5:5e-3:5") + tuple(
    f"{band_stds:g}:{leakage:g}:{taps}"
    for _, band_stds, leakage, taps in leaf_keras.band_limited.TOLERANCE_SETTINGS
)
_TOLERANCE_OF = {
    (band_stds, leakage, taps): tolerance
    for tolerance, band_stds, leakage, taps in leaf_keras.band_limited.TOLERANCE_SETTINGS
}


def _parse_setting(text):
    band_stds, leakage, taps = text.split(":")
    return float(band_stds), float(leakage), int(taps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--settings",
        type=_parse_setting,
        nargs="+",
        default=[_parse_setting(s) for s in DEFAULT_SETTINGS],
        help="BAND_STDS:LEAKAGE:TAPS, e.g. 4:2e-3:5 (the layer's defaults)",
    )
    parser.add_argument("--batch", type=int, default=16, help="clips of 1 s in the timed batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    reference = dict(np.load(REFERENCE))
    inputs = _inputs(reference)
    weight_sets = _weight_sets(reference)
    rng = np.random.default_rng(1)
    cotangent = rng.standard_normal((1, 100, 40)).astype(np.float32)
    timed_batch = np.tile(inputs[2], (args.batch, 1))

    exact = leaf_keras.Leaf(filterbank="fused")
    exact.build((None, 16000))
    exact_step = _value_and_grads(exact, None, cotangent)
    expected = {}
    for set_name, weights in weight_sets.items():
        _load(exact, weights)
        for index, x in enumerate(inputs):
            output, grads = exact_step(x)
            expected[set_name, index] = (np.asarray(output), [np.asarray(g) for g in grads])
    exact_time = _time(exact_step, timed_batch, args.repeats)

    rows = []
    for band_stds, leakage, taps in args.settings:
        fast = leaf_keras.Leaf(filterbank="band_limited")
        stage = fast.filterbank
        stage.band_stds, stage.leakage, stage.interpolation_taps = band_stds, leakage, taps
        fast.build((None, 16000))
        worst = {"output": 0.0, "gradients": 0.0}
        per_case = {}  # "weight set/input": [output error, gradient errors...]
        decimations = []
        for set_name, weights in weight_sets.items():
            _load(fast, weights)
            decimations.append(float(np.mean(stage.planned_decimations)))
            step = _value_and_grads(fast, None, cotangent)
            for index, x in enumerate(inputs):
                output, grads = step(x)
                want_output, want_grads = expected[set_name, index]
                errors = [_error(output, want_output)]
                errors += [_error(got, want) for got, want in zip(grads, want_grads)]
                per_case[f"{set_name}/{index}"] = [round(e, 7) for e in errors]
                worst["output"] = max(worst["output"], errors[0])
                worst["gradients"] = max(worst["gradients"], max(errors[1:]))
        _load(fast, weight_sets["init"])
        seconds = _time(_value_and_grads(fast, None, cotangent), timed_batch, args.repeats)
        row = {
            "band_stds": band_stds,
            "leakage": leakage,
            "taps": taps,
            "output_error": worst["output"],
            "gradient_error": worst["gradients"],
            "mean_decimation_init": decimations[0],
            "seconds": seconds,
            "exact_seconds": exact_time,
            "errors_by_case": per_case,
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    header = (
        "| tolerance | band_stds | leakage | taps | output error | gradient error | "
        "mean decimation | s / batch | × exact speed |"
    )
    lines = [header, "|" + "---|" * 9] if args.markdown else [header]
    for row in rows:
        tolerance = _TOLERANCE_OF.get((row["band_stds"], row["leakage"], row["taps"]))
        lines.append(
            f"| {'–' if tolerance is None else f'{tolerance:g}'} | "
            f"{row['band_stds']:g} | {row['leakage']:g} | {row['taps']} | "
            f"{row['output_error']:.1e} | {row['gradient_error']:.1e} | "
            f"{row['mean_decimation_init']:.1f} | {row['seconds']:.3f} | "
            f"{exact_time / row['seconds']:.1f} |"
        )
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
