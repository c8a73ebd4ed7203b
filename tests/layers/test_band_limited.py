"""Tests of leaf_keras.band_limited.BandLimitedGaborPooling (all backends).

"Relative error" below is max |a - b| / max |b| over the whole tensor, where b
is the exact LEAF result and a the band-limited one, measured
- on the energies after the 1e-5 floor (before PCEN), and
- after PCEN (leaf-audio's trainable PCEN, computed here in numpy),
and for gradients on each weight. The exact path is computed two ways: in
float64 numpy/scipy (values) and with keras.ops (direct convolutions, for
gradients through the backend's autodiff).
"""

import math
import os

import keras
import numpy as np
import pytest
import scipy.signal
from keras import ops

from leaf_keras import band_limited

import layer_test

KERNEL_SIZE, STRIDE, N_FILTERS = 401, 160, 40
REFERENCE = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "data", "leaf_audio_reference.npz"
)
TOLERANCE = 1e-2


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


def _weights(reference, case="leaf"):
    return (
        reference[f"{case}/weight/kernel"],
        reference[f"{case}/weight/leaf/learnable_pooling/kernel"],
    )


# ------------------------------------------------------------ numpy exact path
def numpy_exact(x, gabor_kernel, pooling_kernel):
    """Steps 1-3 of LEAF + floor, float64, as leaf-audio computes them."""
    x = np.asarray(x, np.float64)
    sigma_max = KERNEL_SIZE * math.sqrt(2 * math.log(2)) / math.pi
    mu = np.clip(gabor_kernel[:, 0], 0, math.pi).astype(np.float64)
    sigma = np.clip(gabor_kernel[:, 1], 4 * math.sqrt(2 * math.log(2)) / math.pi, sigma_max).astype(
        np.float64
    )
    width = np.clip(np.reshape(pooling_kernel, -1), 2 / KERNEL_SIZE, 0.5).astype(np.float64)
    t = np.arange(-(KERNEL_SIZE // 2), KERNEL_SIZE // 2 + 1)
    gabor = np.exp(-(t**2) / (2 * sigma[:, None] ** 2) + 1j * mu[:, None] * t) / (
        math.sqrt(2 * math.pi) * sigma[:, None]
    )
    # Cross-correlation with SAME padding = convolution with the reversed taps.
    # (scipy's "same" crops to the shape of the first operand: broadcast it.)
    signal = np.broadcast_to(x[:, None, :], (x.shape[0], len(mu), x.shape[1]))
    y = scipy.signal.fftconvolve(signal, gabor[None, :, ::-1], mode="same", axes=-1)
    power = np.abs(y) ** 2  # (B, C, T)
    time = x.shape[1]
    frames = -(-time // STRIDE)
    pad_total = max((frames - 1) * STRIDE + KERNEL_SIZE - time, 0)
    power = np.pad(power, ((0, 0), (0, 0), (pad_total // 2, pad_total - pad_total // 2)))
    windows = np.lib.stride_tricks.sliding_window_view(power, KERNEL_SIZE, axis=-1)[:, :, ::STRIDE][
        :, :, :frames
    ]
    n = np.arange(KERNEL_SIZE)
    center = (KERNEL_SIZE - 1) / 2
    lowpass = np.exp(-0.5 * ((n - center) / (width[:, None] * center)) ** 2)
    pooled = np.einsum("bcfk,ck->bfc", windows, lowpass)
    return np.maximum(pooled, 1e-5)


def numpy_pcen(energies, reference=None, case="leaf"):
    """leaf-audio's PCEN (per-channel EMA smoother initialized on frame 0)."""
    if reference is None:
        alpha, delta, root, smooth = 0.96, 2.0, 2.0, 0.04
    else:
        prefix = f"{case}/weight/leaf/PCEN/"
        alpha, delta, root, smooth = (
            reference[prefix + name].astype(np.float64)
            for name in ("alpha", "delta", "root", "EMA/smooth")
        )
    smooth = np.clip(smooth, 0, 1)
    alpha, root = np.minimum(alpha, 1), np.maximum(root, 1)
    state = energies[:, 0]
    smoothed = np.empty_like(energies)
    for i in range(energies.shape[1]):
        state = smooth * energies[:, i] + (1 - smooth) * state
        smoothed[:, i] = state
    return (energies / (1e-12 + smoothed) ** alpha + delta) ** (1 / root) - delta ** (1 / root)


def relative_error(actual, expected):
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


# ----------------------------------------------------------------- helpers
def make_layer(gabor_kernel=None, pooling_kernel=None, **kwargs):
    layer = band_limited.BandLimitedGaborPooling(**kwargs)
    layer.build((None, None))
    if gabor_kernel is not None:
        layer.set_weights(
            [np.asarray(gabor_kernel, np.float32), np.asarray(pooling_kernel, np.float32)]
        )
    return layer


def run_layer(layer, x):
    """layer(x) as numpy; jit-compiled on JAX, whose per-op eager mode
    compiles every op for every new shape (far slower for this layer)."""
    x = np.asarray(x, np.float32)
    if keras.backend.backend() == "jax":
        import jax  # pylint: disable=g-import-not-at-top

        if getattr(layer, "_test_jit", None) is None:
            layer._test_jit = jax.jit(  # pylint: disable=protected-access
                lambda v, a: layer.stateless_call(v, [], a)[0]
            )
        values = [v.value for v in layer.trainable_variables]
        return np.asarray(layer._test_jit(values, x))  # pylint: disable=protected-access
    return ops.convert_to_numpy(layer(x))


def band_energies(layer, x):
    return np.maximum(run_layer(layer, x), 1e-5).astype(np.float64)


def chirp_and_noise(time=8000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(time) / 16000.0
    phase = 2 * np.pi * (50 * t + 0.5 * (7900 - 50) / t[-1] * t**2)
    chirp = 0.5 * np.sin(phase) * np.linspace(0.05, 1.0, time)
    noise = 0.1 * rng.standard_normal(time)
    return np.stack([chirp, noise]).astype(np.float32)


def check_close(layer, x, gabor_kernel, pooling_kernel, tolerance=TOLERANCE):
    actual = band_energies(layer, x)
    expected = numpy_exact(x, gabor_kernel, pooling_kernel)
    energy_error = relative_error(actual, expected)
    pcen_error = relative_error(numpy_pcen(actual), numpy_pcen(expected))
    assert energy_error <= tolerance, energy_error
    assert pcen_error <= tolerance, pcen_error
    return energy_error, pcen_error


# ------------------------------------------------------------------- values
def test_numpy_exact_path_matches_leaf_audio_reference(reference):
    # Guards the reference implementation used by every other test.
    gabor_kernel, pooling_kernel = _weights(reference)
    output = numpy_pcen(numpy_exact(reference["input"], gabor_kernel, pooling_kernel), reference)
    assert relative_error(output, reference["leaf/output"]) < 1e-4


@pytest.mark.parametrize("case", ["leaf", "leaf_perturbed"])
def test_matches_leaf_audio_reference(reference, case):
    gabor_kernel, pooling_kernel = _weights(reference, case)
    layer = make_layer(gabor_kernel, pooling_kernel)
    energies = band_energies(layer, reference["input"])
    expected = numpy_exact(reference["input"], gabor_kernel, pooling_kernel)
    assert relative_error(energies, expected) <= TOLERANCE
    output = numpy_pcen(energies, reference, case)
    assert relative_error(output, reference[f"{case}/output"]) <= TOLERANCE


def test_default_initialization_and_chirp_noise(reference):
    layer = make_layer()
    gabor_kernel, pooling_kernel = (ops.convert_to_numpy(w) for w in layer.get_weights())
    np.testing.assert_allclose(gabor_kernel, _weights(reference)[0], rtol=1e-5, atol=1e-6)
    check_close(layer, chirp_and_noise(3200), gabor_kernel, pooling_kernel)


def test_perturbed_parameters_keep_the_plan_and_accuracy(reference):
    # A bit of training: every parameter moves by up to +-10 % while the
    # decimations (shapes) stay those planned at initialization.
    gabor_kernel, pooling_kernel = _weights(reference)
    layer = make_layer(gabor_kernel, pooling_kernel)
    plan = layer.planned_decimations.copy()
    rng = np.random.default_rng(1)
    x = np.concatenate([reference["input"][:, 6400:9600], chirp_and_noise(3200)])
    for _ in range(2):
        new_gabor = gabor_kernel * rng.uniform(0.9, 1.1, gabor_kernel.shape)
        new_pooling = pooling_kernel * rng.uniform(0.9, 1.1, pooling_kernel.shape)
        layer.gabor_kernel.assign(new_gabor.astype(np.float32))
        layer.pooling_kernel.assign(new_pooling.astype(np.float32))
        check_close(layer, x, new_gabor, new_pooling)
        np.testing.assert_array_equal(layer.planned_decimations, plan)


def test_band_follows_learned_center_frequency(reference):
    gabor_kernel, pooling_kernel = _weights(reference)
    layer = make_layer(gabor_kernel, pooling_kernel)
    shifted = gabor_kernel.copy()
    shifted[:, 0] += 0.05  # ~130 Hz, several FFT bins, no replanning
    layer.gabor_kernel.assign(shifted)
    check_close(layer, chirp_and_noise(3200), shifted, pooling_kernel)


@pytest.mark.parametrize("time", [401, 481, 4001])
def test_lengths_and_edges(reference, time):
    gabor_kernel, pooling_kernel = _weights(reference)
    layer = make_layer(gabor_kernel, pooling_kernel)
    x = chirp_and_noise(time, seed=time)
    assert run_layer(layer, x[..., None]).shape == (2, -(-time // STRIDE), N_FILTERS)
    check_close(layer, x, gabor_kernel, pooling_kernel)


def test_fixed_shapes_for_any_parameter_values(reference):
    gabor_kernel, pooling_kernel = _weights(reference)
    layer = make_layer(gabor_kernel, pooling_kernel)
    plan = layer.planned_decimations.copy()
    x = chirp_and_noise(3200)
    rng = np.random.default_rng(2)
    # Out-of-range values are clipped like the exact path; shapes never move.
    layer.gabor_kernel.assign(
        (gabor_kernel * rng.uniform(0.2, 5, gabor_kernel.shape)).astype(np.float32)
    )
    layer.pooling_kernel.assign(np.full((1, 1, N_FILTERS, 1), 3.0, np.float32))
    out = run_layer(layer, x)
    assert out.shape == (2, 20, N_FILTERS) and np.all(np.isfinite(out))
    np.testing.assert_array_equal(layer.planned_decimations, plan)


def test_explicit_decimations_are_used(reference):
    gabor_kernel, pooling_kernel = _weights(reference)
    layer = make_layer(gabor_kernel, pooling_kernel, decimations=[1] * 20 + [2] * 20)
    assert layer.planned_decimations.tolist() == [1] * 20 + [2] * 20
    check_close(layer, chirp_and_noise(3200), gabor_kernel, pooling_kernel, tolerance=1e-3)


# ---------------------------------------------------------------- gradients
class _ExactGaborPooling(keras.layers.Layer):
    """Exact steps 1-3 with keras.ops (direct convolutions), for gradients."""

    def build(self, input_shape):
        self.gabor_kernel = self.add_weight(name="kernel", shape=(N_FILTERS, 2))
        self.pooling_kernel = self.add_weight(name="kernel", shape=(1, 1, N_FILTERS, 1))

    def call(self, x):
        sigma_max = KERNEL_SIZE * math.sqrt(2 * math.log(2)) / math.pi
        mu = ops.clip(self.gabor_kernel[:, 0], 0, math.pi)
        sigma = ops.clip(
            self.gabor_kernel[:, 1], 4 * math.sqrt(2 * math.log(2)) / math.pi, sigma_max
        )
        t = ops.arange(-(KERNEL_SIZE // 2), KERNEL_SIZE // 2 + 1, dtype="float32")[:, None]
        envelope = ops.exp(-(t**2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
        filters = ops.concatenate([envelope * ops.cos(mu * t), envelope * ops.sin(mu * t)], axis=1)
        y = ops.conv(x[:, :, None], filters[:, None, :], padding="same")
        power = y[..., :N_FILTERS] ** 2 + y[..., N_FILTERS:] ** 2
        time = x.shape[1]
        frames = -(-time // STRIDE)
        pad_total = max((frames - 1) * STRIDE + KERNEL_SIZE - time, 0)
        power = ops.pad(power, [[0, 0], [pad_total // 2, pad_total - pad_total // 2], [0, 0]])
        width = ops.clip(ops.reshape(self.pooling_kernel, (-1,)), 2 / KERNEL_SIZE, 0.5)
        n = ops.arange(KERNEL_SIZE, dtype="float32")[:, None]
        center = (KERNEL_SIZE - 1) / 2
        lowpass = ops.exp(-0.5 * ((n - center) / (width * center)) ** 2)
        return ops.depthwise_conv(power, lowpass[:, :, None], strides=STRIDE, padding="valid")


def _gradients(layer, x, loss_fn):
    """d loss / d trainable weights, via the backend's autodiff."""
    backend = keras.backend.backend()
    x = ops.convert_to_tensor(x)
    if backend == "tensorflow":
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        with tf.GradientTape() as tape:
            loss = loss_fn(layer(x))
        grads = tape.gradient(loss, layer.trainable_variables)
    elif backend == "jax":
        import jax  # pylint: disable=g-import-not-at-top

        trainable = [v.value for v in layer.trainable_variables]
        fixed = [v.value for v in layer.non_trainable_variables]

        def loss_of(values):
            return loss_fn(layer.stateless_call(values, fixed, x)[0])

        grads = jax.jit(jax.grad(loss_of))(trainable)
    elif backend == "torch":
        for variable in layer.trainable_variables:
            variable.value.grad = None
        loss_fn(layer(x)).backward()
        grads = [v.value.grad for v in layer.trainable_variables]
    else:
        pytest.skip(f"no gradient helper for backend {backend}")
    return [np.asarray(ops.convert_to_numpy(g), np.float64) for g in grads]


def test_gradients_match_exact_path(reference):
    gabor_kernel, pooling_kernel = _weights(reference)
    rng = np.random.default_rng(3)
    gabor_kernel = gabor_kernel * rng.uniform(0.95, 1.05, gabor_kernel.shape)
    x = chirp_and_noise(3200)
    cotangent = ops.convert_to_tensor(rng.standard_normal((2, 20, N_FILTERS)).astype(np.float32))

    def loss_fn(energies):
        # Log compression weighs every channel alike; a smooth offset instead
        # of the 1e-5 floor, whose kink would make gradients differ wherever
        # the two paths fall on different sides of it.
        return ops.sum(cotangent * ops.log(energies + 1e-4))

    exact = _ExactGaborPooling()
    exact.build((None, None))
    fast = make_layer(gabor_kernel, pooling_kernel)
    for layer in (exact, fast):
        layer.gabor_kernel.assign(gabor_kernel.astype(np.float32))
        layer.pooling_kernel.assign(pooling_kernel.astype(np.float32))
    np.testing.assert_allclose(
        np.maximum(ops.convert_to_numpy(exact(x)), 1e-5),
        numpy_exact(x, gabor_kernel, pooling_kernel),
        rtol=1e-3,
        atol=1e-6,
    )
    for expected, actual in zip(_gradients(exact, x, loss_fn), _gradients(fast, x, loss_fn)):
        cosine = np.sum(expected * actual) / (np.linalg.norm(expected) * np.linalg.norm(actual))
        assert cosine >= 0.999, cosine
        assert relative_error(actual, expected) <= 2e-2


# ------------------------------------------------- against the core layers
def test_matches_core_exact_layers(reference):
    convolution = pytest.importorskip("leaf_keras.convolution")
    pooling = pytest.importorskip("leaf_keras.pooling")
    frontend = pytest.importorskip("leaf_keras.frontend")
    gabor_kernel, pooling_kernel = _weights(reference)
    conv = convolution.GaborConv1D(2 * N_FILTERS, KERNEL_SIZE)
    lowpass = pooling.GaussianLowpass(KERNEL_SIZE, STRIDE, trainable=True)
    x = chirp_and_noise(4000)
    features = conv(x[..., None])
    conv.set_weights([gabor_kernel])
    lowpass.build((None, None, N_FILTERS))
    lowpass.set_weights([pooling_kernel])
    expected = np.maximum(
        ops.convert_to_numpy(lowpass(frontend.SquaredModulus()(conv(x[..., None])))), 1e-5
    )
    del features
    layer = make_layer(conv.get_weights()[0], lowpass.get_weights()[0])
    assert relative_error(band_energies(layer, x), expected) <= TOLERANCE


# ------------------------------------------------ config, saving, compiling
def test_serialization_round_trip(reference, tmp_path):
    gabor_kernel, pooling_kernel = _weights(reference)
    layer = make_layer(
        gabor_kernel, pooling_kernel, band_stds=4.5, interpolation_taps=5, name="blgp"
    )
    x = chirp_and_noise(3200)
    config = layer.get_config()
    clone = band_limited.BandLimitedGaborPooling.from_config(config)
    assert clone.get_config() == config
    inputs = keras.Input((None,))
    model = keras.Model(inputs, layer(inputs))
    assert model.output_shape == (None, None, N_FILTERS)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.get_layer("blgp")
    assert isinstance(restored, band_limited.BandLimitedGaborPooling)
    np.testing.assert_array_equal(restored.planned_decimations, layer.planned_decimations)
    np.testing.assert_allclose(run_layer(restored, x), run_layer(layer, x), rtol=1e-5, atol=1e-8)


def test_compiled_with_dynamic_time_axis(reference):
    # (On JAX every test above already runs the layer under jax.jit.)
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function with a None time axis is TensorFlow-only")
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    gabor_kernel, pooling_kernel = _weights(reference)
    layer = make_layer(gabor_kernel, pooling_kernel)
    x = chirp_and_noise(3000)
    eager = ops.convert_to_numpy(layer(x))
    spec = tf.TensorSpec((None, None), tf.float32)
    for jit in (False, True):
        fn = tf.function(layer.__call__, input_signature=[spec], jit_compile=jit)
        np.testing.assert_allclose(fn(x).numpy(), eager, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_filters": 0},
        {"kernel_size": 400},
        {"strides": 0},
        {"sample_rate": -1},
        {"band_stds": 0},
        {"bandwidth_margin": 0.5},
        {"interpolation_taps": 0},
        {"block_size": 1000},
        {"max_decimation": 0},
        {"max_decimation": 2.5},
        {"decimations": [3] * 40},
        {"decimations": [2] * 39},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        band_limited.BandLimitedGaborPooling(**kwargs)


@pytest.mark.parametrize("shape", [(2, 16000, 2), (16000,), (2, 300)])
def test_bad_input_shapes(shape):
    layer = band_limited.BandLimitedGaborPooling()
    with pytest.raises(ValueError, match="shape"):
        layer(np.zeros(shape, np.float32))


def test_input_gradient_matches_exact_path():
    # The waveform gradient (a learnable pre-emphasis or an attack needs it)
    # flows through the band slices and the hand-written gradient.
    import testing_utils  # pylint: disable=g-import-not-at-top

    x = chirp_and_noise(1600, seed=7)
    cotangent = ops.convert_to_tensor(
        np.random.default_rng(5).standard_normal((2, 10, N_FILTERS)).astype(np.float32)
    )
    exact = _ExactGaborPooling()
    exact.build((None, None))
    fast = make_layer()
    exact.set_weights(fast.get_weights())
    grads = [
        testing_utils.gradients_of_input(
            lambda w, layer=layer: ops.sum(cotangent * ops.log(layer(w) + 1e-4)), x
        )
        for layer in (exact, fast)
    ]
    cosine = np.sum(grads[0] * grads[1]) / (np.linalg.norm(grads[0]) * np.linalg.norm(grads[1]))
    assert cosine >= 0.999, cosine


def test_weak_low_channel_next_to_loud_sound(reference):
    # A quiet 100 Hz hum under a tone 40 dB louder at 1 kHz: the lowest
    # filter (sigma ~96 samples, its envelope cut off at +-200 samples) picks
    # the tone up through the sidelobes of the truncation, which the exact
    # path includes. Its band must be wide enough to hold them.
    gabor_kernel, pooling_kernel = _weights(reference)
    layer = make_layer(gabor_kernel, pooling_kernel)
    t = np.arange(4800) / 16000.0
    x = (0.5 * np.sin(2 * np.pi * 1000 * t) + 0.005 * np.sin(2 * np.pi * 100 * t))[None].astype(
        np.float32
    )
    actual = band_energies(layer, x)
    expected = numpy_exact(x, gabor_kernel, pooling_kernel)
    for channel in range(4):
        error = relative_error(actual[..., channel], expected[..., channel])
        assert error <= 1e-2, (channel, error)


# ------------------------------------------------------------- layer contract
def test_band_limited_gabor_pooling_layer_contract():
    # 4 filters in two decimation groups (fixed: on JAX each op of an eager
    # call compiles, and a full-rate group of planned decimations costs ~10 s;
    # the planning and its save/load are tested above); 1200 samples:
    # ceil(1200 / 160) = 8 frames. The layer computes in float32 and returns
    # float32 energies under any policy (its compute_output_spec says
    # float32), which Leaf's floor and PCEN read.
    layer_test.run_layer_test(
        band_limited.BandLimitedGaborPooling,
        {"n_filters": 4, "decimations": [2, 2, 4, 4]},
        input_shape=(2, 1200),
        expected_output_shape=(2, 8, 4),
        mixed_output_dtype="float32",
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's XLA bridge only")
def test_xla_program_does_not_depend_on_the_learned_center_frequencies():
    """A training step compiles once: the bands' starts follow the learned centers, and
    TensorFlow's XLA bridge would compile a slice's start into the program as a constant
    (the program, and so a compilation, per step)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    layer = band_limited.BandLimitedGaborPooling(n_filters=8)
    layer.build((None, 4000))
    x = tf.zeros((1, 4000))
    program = tf.function(layer, jit_compile=True).experimental_get_compiler_ir(x)

    before = program(stage="hlo")
    kernel = ops.convert_to_numpy(layer.gabor_kernel)
    kernel[:, 0] *= 1.05  # every center moves by several bins
    layer.gabor_kernel.assign(kernel)
    assert program(stage="hlo") == before


# ---------------------------------------------------------------- tolerance
@pytest.mark.parametrize(
    "tolerance, setting",
    [
        (1.0, (4.0, 2e-3, 5)),
        (1e-2, (4.0, 2e-3, 5)),
        (5e-3, (5.0, 1e-3, 7)),
        (1e-3, (5.0, 1e-3, 7)),
        (1e-4, (6.0, 1e-3, 11)),
        (2e-5, (7.0, 1e-5, 11)),
        (1e-5, (7.0, 1e-5, 11)),
    ],
)
def test_tolerance_picks_the_cheapest_setting_within_it(tolerance, setting):
    layer = band_limited.BandLimitedGaborPooling(tolerance=tolerance)
    assert (layer.band_stds, layer.leakage, layer.interpolation_taps) == setting
    assert layer.tolerance == tolerance
    # Its config rebuilds the same layer (the settings repeat the tolerance's).
    again = band_limited.BandLimitedGaborPooling.from_config(layer.get_config())
    assert (again.band_stds, again.leakage, again.interpolation_taps, again.tolerance) == (
        *setting,
        tolerance,
    )


def test_without_tolerance_the_defaults_and_given_settings_hold():
    layer = band_limited.BandLimitedGaborPooling()
    assert (layer.band_stds, layer.leakage, layer.interpolation_taps, layer.tolerance) == (
        4.0,
        2e-3,
        5,
        None,
    )
    layer = band_limited.BandLimitedGaborPooling(band_stds=5.0, interpolation_taps=9)
    assert (layer.band_stds, layer.leakage, layer.interpolation_taps) == (5.0, 2e-3, 9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tolerance": 1e-6}, "between 1e-05 and 1.*exact engine"),
        ({"tolerance": 0}, "between 1e-05 and 1"),
        ({"tolerance": 2.0}, "between 1e-05 and 1"),
        ({"tolerance": "tight"}, "tolerance must be a number, got 'tight'"),
        ({"tolerance": 1e-4, "band_stds": 4.0}, r"tolerance=0.0001 sets band_stds=6.0, got"),
        ({"tolerance": 1e-4, "interpolation_taps": 5}, "sets interpolation_taps=11"),
    ],
)
def test_bad_tolerance(kwargs, match):
    with pytest.raises(ValueError, match=match):
        band_limited.BandLimitedGaborPooling(**kwargs)


def test_leaf_tolerance_selects_the_band_limited_engine():
    import leaf_keras  # pylint: disable=g-import-not-at-top

    frontend = leaf_keras.Leaf(tolerance=1e-4)
    assert frontend.band_limited and frontend.filterbank.tolerance == 1e-4
    assert frontend.filterbank.band_stds == 6.0
    config = frontend.get_config()
    assert config["tolerance"] == 1e-4
    again = leaf_keras.Leaf.from_config(config)
    assert again.band_limited and again.filterbank.interpolation_taps == 11
    assert "tolerance" not in leaf_keras.Leaf(filterbank="band_limited").get_config()
    assert "tolerance" not in leaf_keras.Leaf(filterbank="fused").get_config()
    for engine in ("fused", "layers"):
        with pytest.raises(ValueError, match=f"filterbank='{engine}' is exact"):
            leaf_keras.Leaf(filterbank=engine, tolerance=1e-3)


def test_leaf_defaults_to_the_band_limited_engine_at_1e_4():
    import leaf_keras  # pylint: disable=g-import-not-at-top

    frontend = leaf_keras.Leaf()
    assert frontend.band_limited and frontend.tolerance == leaf_keras.frontend.DEFAULT_TOLERANCE
    assert frontend.filterbank.tolerance == 1e-4
    # Its config names the engine and the tolerance, so it rebuilds the same frontend even
    # if the default moves.
    config = frontend.get_config()
    assert (config["filterbank"], config["tolerance"]) == ("band_limited", 1e-4)
    # Exact where the band-limited engine cannot compute the stages, in float64, or told so.
    assert leaf_keras.Leaf(activation=keras.layers.Activation("tanh")).filterbank.engine == "layers"
    assert leaf_keras.Leaf(dtype="float64").filterbank.engine == "fused"
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        assert not leaf_keras.Leaf().band_limited
    finally:
        keras.config.set_dtype_policy(previous)
    assert leaf_keras.Leaf(band_limited=False).filterbank.engine == "fused"
    # A file written when `Leaf()` was exact stored band_limited=False: it stays exact.
    assert not leaf_keras.Leaf.from_config({"band_limited": False}).band_limited


def test_unbuilt_frontend_has_a_symbolic_output_with_a_fixed_batch():
    # `keras.Sequential.compute_output_spec` passes `training` to every stage of an unbuilt
    # frontend, as `fit` does when it builds a classifier from a batch of 4.
    import leaf_keras  # pylint: disable=g-import-not-at-top

    spec = leaf_keras.Leaf().compute_output_spec(keras.KerasTensor((4, 16000)), training=False)
    assert spec.shape == (4, 100, 40)
    classifier = leaf_keras.AudioClassifier(
        3, frontend=leaf_keras.Leaf(n_filters=8), encoder=leaf_keras.ConvNet([4])
    )
    classifier.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = classifier.fit(np.zeros((4, 1600), "float32"), np.zeros(4), batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_model_set_weights_replans_band_limited_stages():
    # A model's `set_weights` assigns its sub-layers' variables directly: without a
    # re-plan, the band-limited stage keeps the decimations of its initial weights.
    import leaf_keras  # pylint: disable=g-import-not-at-top

    def widened(weights):
        # The widest bandwidths the Gabor constraint allows: every filter needs a wider
        # band, hence a smaller decimation.
        weights = [np.array(w) for w in weights]
        assert weights[0].shape == (8, 2)  # the Gabor parameters come first
        weights[0][:, 1] = 4 * math.sqrt(2 * math.log(2)) / math.pi
        return weights

    def planned_from_weights(stage):
        return band_limited.band_plan.plan_decimations(
            ops.convert_to_numpy(stage.gabor_kernel),
            stage.kernel_size,
            stage.strides,
            stage.block_size,
            stage.band_stds,
            stage.bandwidth_margin,
            stage.max_decimation,
            stage.leakage,
        )

    x = np.zeros((1, 1600), "float32")
    sequential = keras.Sequential([leaf_keras.Leaf(n_filters=8)])
    sequential(x)
    stage = sequential.layers[0].band_limited_filterbank
    initial = stage.planned_decimations.copy()
    sequential.set_weights(widened(sequential.get_weights()))
    wanted = planned_from_weights(stage)
    assert not np.array_equal(wanted, initial)
    np.testing.assert_array_equal(stage.planned_decimations, initial)  # stale
    assert leaf_keras.update_band_plans(sequential) == 1
    np.testing.assert_array_equal(stage.planned_decimations, wanted)

    for model in (
        leaf_keras.Leaf(n_filters=8),
        leaf_keras.AudioClassifier(
            3, frontend=leaf_keras.Leaf(n_filters=8), encoder=leaf_keras.ConvNet([4])
        ),
    ):
        model(x)
        frontend = model if isinstance(model, leaf_keras.Leaf) else model.frontend
        stage = frontend.band_limited_filterbank
        initial = stage.planned_decimations.copy()
        model.set_weights(widened(model.get_weights()))
        assert not np.array_equal(stage.planned_decimations, initial)
        np.testing.assert_array_equal(stage.planned_decimations, planned_from_weights(stage))
