"""`run_layer_test`: the checks every leaf_keras layer passes, on the active backend.

In the spirit of Keras's own `TestCase.run_layer_test`
(keras/src/testing/test_case.py), adapted to this package: its layers take
waveforms or features with a time axis of any length, keep float32 weights
under mixed precision, and are saved in `.keras` files inside models.
For one layer configuration it checks:

- "call": a layer built and called on (random) inputs returns the expected
  shape and dtype, finite values, and `compute_output_shape` of the input
  shape agrees; optionally the numbers of trainable and non-trainable
  weights.
- "compute_output_shape_none": `compute_output_shape` with a `None` batch
  and a `None` time axis keeps `None` there (and the other axes).
- "symbolic_none_time": a fresh layer called on a `keras.KerasTensor` with a
  `None` batch and time axis builds and returns that shape.
- "config_round_trip": `from_config(get_config())` gives the same config.
- "serialize_round_trip": `keras.saving.serialize_keras_object` /
  `deserialize_keras_object` gives a layer of the same class and config.
- "clone_outputs": that clone, given the layer's weights, gives the same
  outputs.
- "keras_file_round_trip": the layer in a `keras.Sequential` with a
  `keras.Input`, saved to a `.keras` file and reloaded with
  `keras.saving.load_model`, gives the same outputs.
- "mixed_float16" / "mixed_bfloat16": under that dtype policy (through the
  layer's `dtype=` argument, or the global policy for layers that create
  sub-layers) the layer, given the same weights, runs, keeps float32
  weights, and returns finite outputs of the documented dtype, close to the
  float32 outputs.

The weights are moved away from their initial values (by up to +-10 %)
before the comparisons, so that a clone or a reloaded file that silently
re-initialized them would not pass. Each compared output is the second call
of its layer (the layer itself, its clone, each mixed-precision layer: a
first call builds it), so a seeded random layer draws the same numbers in
all of them; the `.keras` model's calls come later.

Every check runs unless the caller opts out explicitly:
`skip={"check name": "why it does not apply"}`; each skip needs a reason,
which the test then documents, and the helper prints the skipped checks
and returns `{check: "passed" | "skipped: <reason>"}`.
"""

import contextlib
import os
import tempfile

import keras
import numpy as np

CHECKS = (
    "call",
    "compute_output_shape_none",
    "symbolic_none_time",
    "config_round_trip",
    "serialize_round_trip",
    "clone_outputs",
    "keras_file_round_trip",
    "mixed_float16",
    "mixed_bfloat16",
)
# Checks that compare with the eager outputs of the "call" check.
_NEED_CALL = ("clone_outputs", "keras_file_round_trip", "mixed_float16", "mixed_bfloat16")
# Half precision keeps ~3 significant digits (float16: 10 mantissa bits,
# eps 1e-3) or ~2 (bfloat16: 7 bits, eps 8e-3). The layers compute their
# filters, FFTs, poolings and recurrences in float32 but round inputs,
# outputs and the intermediates between sub-layers to the compute dtype, a
# few roundings in a row, and compressions such as log or PCEN amplify the
# rounding of small energies: a deviation of up to ~20 eps, relative to the
# largest output, is what these policies are expected to cost.
MIXED_TOLERANCE = {"mixed_float16": 2e-2, "mixed_bfloat16": 6e-2}


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _random_inputs(shape, input_range, seed):
    rng = np.random.default_rng(seed)
    if input_range is None:
        return rng.standard_normal(shape).astype(np.float32)
    low, high = input_range
    return rng.uniform(low, high, shape).astype(np.float32)


def _perturb_weights(layer, seed):
    """Scales every float weight by a factor in [0.9, 1.1] (set_weights)."""
    rng = np.random.default_rng(seed)
    weights = []
    for value in layer.get_weights():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating):
            value = (value * rng.uniform(0.9, 1.1, value.shape)).astype(value.dtype)
        weights.append(value)
    layer.set_weights(weights)


def _none_shape(shape, time_axis):
    shape = list(shape)
    shape[0] = None
    if time_axis is not None:
        shape[time_axis] = None
    return tuple(shape)


def _assert_close(actual, expected, rtol, what):
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    np.testing.assert_allclose(
        actual, expected, rtol=rtol, atol=rtol * (scale or 1.0), err_msg=what
    )


@contextlib.contextmanager
def _global_dtype_policy(policy):
    """Sets the global dtype policy, restoring the previous one afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def run_layer_test(
    layer_factory,
    init_kwargs=None,
    *,
    input_shape=None,
    input_data=None,
    input_range=None,
    call_kwargs=None,
    expected_output_shape,
    expected_output_dtype="float32",
    time_axis=1,
    output_time_axis=1,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    mixed_precision_via="dtype",
    mixed_output_dtype="compute",
    mixed_tolerance=None,
    rtol=1e-5,
    skip=None,
    seed=0,
):
    """Runs the checks of the module docstring on one layer configuration.

    Args:
        layer_factory: the layer class, or a callable returning a new layer;
            called as `layer_factory(**init_kwargs)` (plus `dtype=policy`
            for the mixed precision checks with `mixed_precision_via=
            "dtype"`). `from_config` is that of the layer's class.
        init_kwargs: keyword arguments of `layer_factory`.
        input_shape: shape of random float32 inputs (standard normal, or
            uniform in `input_range`); or pass `input_data` instead.
        input_data: a numpy array to call the layer on.
        input_range: `(low, high)` of uniform random inputs (e.g. positive
            energies for a compression), None for standard normal ones.
        call_kwargs: keyword arguments of every call (e.g. `training`; the
            `.keras` check passes them to the model's call).
        expected_output_shape: the output shape for the inputs.
        expected_output_dtype: the output dtype under the float32 policy.
        time_axis: the input axis set to None by the None-time checks (None:
            only the batch axis).
        output_time_axis: the output axis that becomes None with it (None:
            the output has no time axis, e.g. a classifier).
        expected_num_trainable_weights: if not None, `len(
            layer.trainable_weights)` once built.
        expected_num_non_trainable_weights: likewise for non-trainable ones.
        mixed_precision_via: "dtype" (the policy is the layer's `dtype=`
            argument) or "global" (`keras.config.set_dtype_policy`,
            restored afterwards, for layers that create their sub-layers
            with the global policy).
        mixed_output_dtype: the documented output dtype under a mixed
            policy: "compute" (the policy's compute dtype) or a dtype name.
        mixed_tolerance: `{policy: tolerance}` overriding `MIXED_TOLERANCE`
            (max |mixed - float32| <= tolerance * max |float32|).
        rtol: relative tolerance of the clone and reloaded outputs (and
            absolute, times the largest output).
        skip: `{check: reason}` of checks opted out (see `CHECKS`); a reason
            is required. Skipping "call" also skips the checks that compare
            with its outputs.
        seed: seed of the random inputs and weight perturbations.

    Returns:
        `{check: "passed" | "skipped: <reason>"}` for every check.
    """
    init_kwargs = dict(init_kwargs or {})
    call_kwargs = dict(call_kwargs or {})
    skip = dict(skip or {})
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise ValueError(f"Unknown checks {unknown}; the checks are {CHECKS}.")
    for check, reason in skip.items():
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"skip[{check!r}] needs a reason, got {reason!r}.")
    if "call" in skip:
        for check in _NEED_CALL:
            skip.setdefault(check, f"needs the eager call ({skip['call']})")
    if (input_shape is None) == (input_data is None):
        raise ValueError("Pass exactly one of input_shape and input_data.")
    if mixed_precision_via not in ("dtype", "global"):
        raise ValueError(
            f"mixed_precision_via must be 'dtype' or 'global', got {mixed_precision_via!r}."
        )
    if input_data is None:
        input_data = _random_inputs(input_shape, input_range, seed)
    input_data = np.asarray(input_data)
    expected_output_shape = tuple(expected_output_shape)
    expected_none_shape = _none_shape(expected_output_shape, output_time_axis)
    none_input_shape = _none_shape(input_data.shape, time_axis)
    results = {check: f"skipped: {reason}" for check, reason in skip.items()}

    def run(check, function):
        if check not in skip:
            function()
            results[check] = "passed"

    def count_weights(layer):
        if expected_num_trainable_weights is not None:
            assert len(layer.trainable_weights) == (expected_num_trainable_weights), [
                w.path for w in layer.trainable_weights
            ]
        if expected_num_non_trainable_weights is not None:
            assert len(layer.non_trainable_weights) == (expected_num_non_trainable_weights), [
                w.path for w in layer.non_trainable_weights
            ]

    layer = layer_factory(**init_kwargs)
    outputs = {}

    def check_call():
        first = layer(input_data, **call_kwargs)
        assert layer.built
        assert tuple(first.shape) == expected_output_shape, first.shape
        assert keras.backend.standardize_dtype(first.dtype) == (expected_output_dtype), first.dtype
        assert np.isfinite(_np(first)).all()
        assert tuple(layer.compute_output_shape(input_data.shape)) == (expected_output_shape)
        count_weights(layer)
        _perturb_weights(layer, seed + 1)
        outputs["expected"] = _np(layer(input_data, **call_kwargs))
        assert np.isfinite(outputs["expected"]).all()

    run("call", check_call)

    def check_compute_output_shape_none():
        assert tuple(layer.compute_output_shape(none_input_shape)) == (expected_none_shape)

    run("compute_output_shape_none", check_compute_output_shape_none)

    def check_symbolic_none_time():
        fresh = layer_factory(**init_kwargs)
        symbolic = fresh(
            keras.KerasTensor(none_input_shape, dtype=str(input_data.dtype)), **call_kwargs
        )
        assert fresh.built
        assert tuple(symbolic.shape) == expected_none_shape, symbolic.shape
        count_weights(fresh)

    run("symbolic_none_time", check_symbolic_none_time)

    config = layer.get_config()
    clones = {}

    def check_config_round_trip():
        clone = type(layer).from_config(config)
        assert type(clone) is type(layer)
        assert clone.get_config() == config

    run("config_round_trip", check_config_round_trip)

    def check_serialize_round_trip():
        serialized = keras.saving.serialize_keras_object(layer)
        clone = keras.saving.deserialize_keras_object(serialized)
        assert type(clone) is type(layer)
        assert clone.get_config() == config
        clones["deserialized"] = clone

    run("serialize_round_trip", check_serialize_round_trip)

    def check_clone_outputs():
        clone = (
            clones["deserialized"] if "deserialized" in clones else type(layer).from_config(config)
        )
        clone(input_data, **call_kwargs)  # builds
        clone.set_weights(layer.get_weights())
        _assert_close(
            _np(clone(input_data, **call_kwargs)),
            outputs["expected"],
            rtol,
            "clone with copied weights",
        )

    run("clone_outputs", check_clone_outputs)

    def check_keras_file_round_trip():
        model = keras.Sequential(
            [
                keras.Input(
                    batch_shape=(None,) + input_data.shape[1:], dtype=str(input_data.dtype)
                ),
                layer,
            ]
        )
        _assert_close(
            _np(model(input_data, **call_kwargs)), outputs["expected"], rtol, "in a Sequential"
        )
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.keras")
            model.save(path)
            restored = keras.saving.load_model(path)
        assert type(restored.layers[-1]) is type(layer)
        _assert_close(
            _np(restored(input_data, **call_kwargs)),
            outputs["expected"],
            rtol,
            "reloaded .keras file",
        )

    run("keras_file_round_trip", check_keras_file_round_trip)

    tolerances = dict(MIXED_TOLERANCE, **(mixed_tolerance or {}))
    for policy in ("mixed_float16", "mixed_bfloat16"):

        def check_mixed(policy=policy):
            if mixed_precision_via == "dtype":
                mixed = layer_factory(**init_kwargs, dtype=policy)
                assert mixed.dtype_policy.name == policy
                mixed(input_data, **call_kwargs)  # builds
                mixed.set_weights(layer.get_weights())
                actual = mixed(input_data, **call_kwargs)
            else:
                with _global_dtype_policy(policy):
                    mixed = layer_factory(**init_kwargs)
                    mixed(input_data, **call_kwargs)  # builds
                    mixed.set_weights(layer.get_weights())
                    actual = mixed(input_data, **call_kwargs)
            expected_dtype = (
                keras.DTypePolicy(policy).compute_dtype
                if mixed_output_dtype == "compute"
                else mixed_output_dtype
            )
            assert keras.backend.standardize_dtype(actual.dtype) == (expected_dtype), (
                policy,
                actual.dtype,
            )
            for weight in mixed.weights:
                if keras.backend.is_float_dtype(weight.dtype):
                    assert keras.backend.standardize_dtype(weight.dtype) == "float32", (
                        policy,
                        weight.path,
                    )
            actual = _np(keras.ops.cast(actual, "float32"))
            assert tuple(actual.shape) == expected_output_shape
            assert np.isfinite(actual).all(), policy
            expected = outputs["expected"]
            error = np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30)
            assert error <= tolerances[policy], (policy, error)

        run(policy, check_mixed)

    skipped = {check: reason for check, reason in results.items() if reason.startswith("skipped")}
    if skipped:
        print(f"run_layer_test({type(layer).__name__}): {skipped}")
    return results
