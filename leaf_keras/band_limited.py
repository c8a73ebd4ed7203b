"""Band-limited (decimated) computation of LEAF's Gabor filtering and pooling.

The exact LEAF front end (Zeghidour et al., "LEAF: A Learnable Frontend for
Audio Classification", ICLR 2021, https://arxiv.org/abs/2101.08596) computes,
for every filter k,

    y_k = x * g_k                       (401-tap complex Gabor filter, SAME)
    p_k = |y_k|^2                       (full sample rate, 40 channels)
    z_k[m] = sum_j w_k[j] p_k[160 m - pad_left + j]   (Gaussian lowpass)

which costs a full-rate `[batch, time, 80]` intermediate. Each Gabor output is
narrow-band, so `BandLimitedGaborPooling` computes the same `z` from a
decimated representation (in the spirit of EfficientLEAF, Schlueter &
Gutenbrunner, https://arxiv.org/abs/2207.05508, but with an error that stays
within a few 1e-3 of the exact result instead of a different model):

1. The waveform is cut into overlapping blocks (overlap-save, `block_size`
   samples, overlap >= kernel_size - 1) and each block is Fourier transformed
   once.
2. For filter k only `block_size / D_k` bins around its learned center
   frequency are kept (a slice of the periodic spectrum, so the band follows
   the center while it learns), multiplied by the exact DFT of the
   *truncated* `kernel_size`-tap Gabor filter, and inverse transformed at the
   reduced length. This gives `y_k` at every `D_k`-th sample (its modulus is
   unaffected by the implicit demodulation).
3. `D_k`, a divisor of the stride, is the largest whose band `2 pi / D_k`
   holds the filter's response: `band_stds` standard deviations of its
   Gaussian on each side, and every truncation sidelobe above `leakage`
   (`band_plan.plan_decimations`). `p_k = |y_k|^2` is then aliased at rate `D_k`, but
   only by products of the response's tails.
4. The Gaussian pooling `sum_j w_k[j] p_k[c + j]` is evaluated as
   `sum_i a_k[i] p_k[D_k i]`, where `a_k` is the pooling window projected on
   a short windowed-sinc interpolation kernel. This keeps the truncation of
   the window (and the zero padding at the signal edges, handled by separate
   kernels for the first and last two frames) exact, which a plain
   `D_k * sum_i w_k(D_k i) p_k(D_k i)` would not; the kernel is short so that
   the aliasing of `p_k` at transients stays local.

The gradient of step 2 is written out (`ops.band_power`): one more DFT per band,
from the forward pass's transforms, which it keeps. The pooling runs filters
major, as matrix products batched over filters.

Decimation factors are fixed when the layer is built (from the initial, or
later loaded, parameters), so tensor shapes do not change while the
parameters learn. Filters with the same factor are processed together.
"""

import dataclasses
import math

import keras
from keras import ops

from leaf_keras import band_plan
from leaf_keras import convolution
from leaf_keras import impulse_responses
from leaf_keras import initializers
from leaf_keras import waveforms
from leaf_keras.ops import block_pooling
from leaf_keras.ops import padding as padding_lib
from leaf_keras.ops import precision
from leaf_keras.ops.band_power import band_power

# (tolerance, band_stds, leakage, interpolation_taps), loose to tight. The worst
# relative error against the exact engine (max |fast - exact| / max |exact|) of
# LEAF's output after PCEN and of the gradients of every weight, over four weight
# sets (initialization, the leaf-audio reference's perturbed weights, the widest
# bandwidths, trained-like weights) and three 1-s inputs, measured by
# `benchmarks/band_limited_tolerance.py` (its table in benchmarks/README.md),
# stays below the tolerance with at least a factor 2 to spare.
TOLERANCE_SETTINGS = (
    (1e-2, 4.0, 2e-3, 5),
    (1e-3, 5.0, 1e-3, 7),
    (1e-4, 6.0, 1e-3, 11),
    (1e-5, 7.0, 1e-5, 11),
)
_SETTING_NAMES = ("band_stds", "leakage", "interpolation_taps")
_DEFAULT_SETTING = dict(zip(_SETTING_NAMES, TOLERANCE_SETTINGS[0][1:]))


def settings_for_tolerance(tolerance):
    """`{band_stds, leakage, interpolation_taps}` of the cheapest setting
    within `tolerance` (a relative error, 1e-5 to 1)."""
    try:
        tolerance = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"tolerance must be a number, got {tolerance!r}.") from None
    tightest = TOLERANCE_SETTINGS[-1][0]
    if not tightest <= tolerance <= 1.0:
        raise ValueError(
            f"tolerance must be between {tightest:g} and 1, got {tolerance!r}: below "
            f"{tightest:g} the band-limited engine's measured error is not guaranteed; "
            'use the exact engine (filterbank="fused") instead.'
        )
    for bound, *setting in TOLERANCE_SETTINGS:
        if bound <= tolerance:
            return dict(zip(_SETTING_NAMES, setting))
    raise AssertionError("unreachable: the tightest setting is checked above")


def _resolved_settings(tolerance, band_stds, leakage, interpolation_taps):
    """The three accuracy settings: from `tolerance` if given (the others may
    only repeat its values), else the given ones over the defaults."""
    given = {"band_stds": band_stds, "leakage": leakage, "interpolation_taps": interpolation_taps}
    if tolerance is None:
        return {k: _DEFAULT_SETTING[k] if v is None else v for k, v in given.items()}
    settings = settings_for_tolerance(tolerance)
    for name, value in given.items():
        if value is not None and value != settings[name]:
            raise ValueError(
                f"tolerance={tolerance!r} sets {name}={settings[name]!r}, got {name}="
                f"{value!r}: pass either tolerance or band_stds, leakage and "
                "interpolation_taps."
            )
    return settings


def _check_positive_int(name, value, minimum=1):
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _check_arguments(
    n_filters,
    kernel_size,
    strides,
    sample_rate,
    band_stds,
    bandwidth_margin,
    interpolation_taps,
    max_decimation,
    leakage,
):
    """Raises ValueError naming the first invalid constructor argument."""
    for name, value in (
        ("n_filters", n_filters),
        ("strides", strides),
        ("interpolation_taps", interpolation_taps),
        ("max_decimation", max_decimation),
    ):
        _check_positive_int(name, value)
    _check_positive_int("kernel_size", kernel_size, minimum=3)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size!r}.")
    if not sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}.")
    if not band_stds > 0:
        raise ValueError(f"band_stds must be positive, got {band_stds!r}.")
    if not bandwidth_margin >= 1.0:
        raise ValueError(f"bandwidth_margin must be >= 1, got {bandwidth_margin!r}.")
    if not 0.0 < leakage < 1.0:
        raise ValueError(f"leakage must be in (0, 1), got {leakage!r}.")


def _checked_block_size(block_size, kernel_size, strides):
    """`block_size`, by default `strides` times a power of two near 12
    kernel sizes (5120 samples at stride 160): a 2^a 5^b FFT size whose
    wrap-around margin is ~10 % of the block."""
    if block_size is None:
        block_size = int(strides) * 2 ** max(
            0, math.ceil(math.log2(12 * kernel_size / int(strides)))
        )
    if int(block_size) != block_size or block_size % int(strides) or block_size < 4 * kernel_size:
        raise ValueError(
            f"block_size must be a multiple of strides ({strides}) and "
            f">= 4 * kernel_size ({4 * kernel_size}), got {block_size!r}."
        )
    return int(block_size)


def _checked_decimations(decimations, n_filters, strides, max_decimation):
    """`decimations` as a list of ints (None: planned at build time)."""
    if decimations is None:
        return None
    decimations = [int(d) for d in decimations]
    if len(decimations) != n_filters or any(
        d < 1 or strides % d or d > max_decimation for d in decimations
    ):
        raise ValueError(
            f"decimations must list {n_filters} integers <= max_decimation "
            f"({max_decimation}) dividing strides ({strides}), got "
            f"{decimations!r}."
        )
    return decimations


def _periodic_spectrum(blocks, extra):
    """Two-sided DFT of real blocks (bins 0 .. N - 1), continued by its
    first `extra` bins so that every band, wrapped around, is one slice."""
    block = blocks.shape[-1]
    real, imag = ops.rfft(blocks)
    mirror = slice(1, block // 2)
    real = ops.concatenate([real, ops.flip(real[..., mirror], axis=-1)], -1)
    imag = ops.concatenate([imag, -ops.flip(imag[..., mirror], axis=-1)], -1)
    return (
        ops.concatenate([real, real[..., :extra]], axis=-1),
        ops.concatenate([imag, imag[..., :extra]], axis=-1),
    )


def _circular_spectra(real, imag, block_size):
    """DFT (length block_size) of centered filters `(n, K)`: tap t at index
    t mod block_size."""
    half = real.shape[1] // 2
    zeros = ops.zeros((real.shape[0], block_size - real.shape[1]), real.dtype)

    def place(part):
        return ops.concatenate([part[:, half:], zeros, part[:, :half]], axis=1)

    return ops.fft((place(real), place(imag)))


# Per call: the filters' band spectra, pooling windows and center bins, and the
# framing of the output (where the signal's edges are).
_Bands = dataclasses.make_dataclass("_Bands", ["filt_real", "filt_imag", "windows", "center_bins"])
_Edges = dataclasses.make_dataclass("_Edges", ["frames", "pad_left", "time", "static_time"])
# A padded batch: each clip's SAME left padding, samples and frames, int32 `(batch,)`.
_Clips = dataclasses.make_dataclass("_Clips", ["lefts", "lengths", "frames"])


def _block_spectra(x, plan, block, strides, kernel_size, frames, pad_left):
    """Periodic spectra of the overlap-save blocks `[batch, blocks, N']`.

    Grid positions are relative to the start of the first pooling window
    `c_0 = -pad_left`: position `c_0 - guard + i`.
    """
    needed = strides * frames + kernel_size + 2 * plan.guard + plan.step
    n_blocks = (needed + plan.hop - 1) // plan.hop
    offset = plan.valid_start + plan.guard + pad_left
    right = (n_blocks + 1) * plan.hop - offset - ops.shape(x)[1]
    rows = ops.reshape(ops.pad(x, [[0, 0], [offset, right]]), (-1, n_blocks + 1, plan.hop))
    blocks = ops.concatenate([rows[:, :-1], rows[:, 1:, : block - plan.hop]], axis=-1)
    return _periodic_spectrum(blocks, block // int(plan.decimations.min()))


def _with_edge_frames(pooled, power, windows, matrix, kernel_len, step, inputs, strides):
    """`pooled` with the frames whose window crosses the signal edges
    recomputed: their kernels leave out the taps on the zero padding,
    which the band-limited power does not vanish on. All edge kernels come
    from one product, and the edge frames from a few batched contractions
    (not one per frame: XLA on CPU pays per small dot, and runs a reduction
    per frame as a slow reduce-window)."""
    frames = inputs.frames
    short = inputs.static_time and frames <= 4
    edge_frames = list(range(frames)) if short else [0, 1, frames - 2, frames - 1]
    taps = ops.arange(windows.shape[1], dtype="int32")
    inside = []
    for frame in edge_frames:
        position = frame * strides - inputs.pad_left + taps
        inside.append(ops.logical_and(position >= 0, position < inputs.time))
    inside = ops.cast(ops.stack(inside, axis=0), windows.dtype)  # [edges, K]
    edge_kernels = ops.matmul(windows[None, :, :] * inside[:, None, :], matrix)  # [edges, c, q]
    if short or keras.backend.backend() == "tensorflow":
        edge_samples = ops.stack(
            [power[:, :, step * frame : step * frame + kernel_len] for frame in edge_frames],
            axis=2,
        )
        edges = ops.einsum("cbmq,mcq->cbm", edge_samples, edge_kernels)
        if short:
            return edges
        return ops.concatenate([edges[:, :, :2], pooled[:, :, 2:-2], edges[:, :, 2:]], axis=2)
    # The two first frames read the power's first `span` samples, the two last its
    # last `span`; each pair is one product with the pair's kernels, the second one
    # shifted by a step. On JAX the gradient of four stacked frame slices fuses into
    # the band power's backward, a pass over every band sample, where it costs ~10 %
    # of the step; the gradient of these products is two small pads. (TensorFlow's
    # XLA bridge does not fuse it, and runs the stacked slices faster.)
    span = (-(-kernel_len // step) + 1) * step

    def pair_kernels(first):
        return ops.stack(
            [
                ops.pad(edge_kernels[first + k], [[0, 0], [k * step, span - kernel_len - k * step]])
                for k in (0, 1)
            ],
            axis=-1,
        )  # [c, span, 2]

    last = (frames - 2) * step
    heads = ops.matmul(power[:, :, :span], pair_kernels(0))
    tails = ops.matmul(power[:, :, last : last + span], pair_kernels(2))
    return ops.concatenate([heads, pooled[:, :, 2:-2], tails], axis=2)


def _with_clip_edge_frames(pooled, power, windows, matrix, kernel_len, step, clips, strides):
    """`pooled` with each clip's own edge frames recomputed, for a batch of clips laid
    out one per row as `BandLimitedGaborPooling._call_padded_clips` lays them out.

    As in `_with_edge_frames`, a frame whose window crosses a clip's edge is recomputed
    with a kernel that leaves out the window's taps outside the clip; here the edges are
    each clip's own, so the kernels differ from row to row. The taps inside are a
    contiguous range, so each kernel is a difference of two rows of the cumulative sum of
    `windows * matrix` over the window's taps: a gather per clip, not a matrix product.
    Frames past each clip's last are set to 0, the energy the exact engine pools from
    the padding.
    """
    window = windows.shape[1]
    cumulative = ops.cumsum(windows[:, :, None] * matrix[None], axis=1)
    cumulative = ops.pad(cumulative, [[0, 0], [1, 0], [0, 0]])  # [count, window + 1, taps]
    frames = ops.shape(pooled)[2]
    last = clips.frames - 1
    frame_index = ops.arange(frames, dtype="int32")[None, None, :]
    taps = ops.arange(kernel_len, dtype="int32")[None, None, :]
    outputs = pooled
    for frame in (ops.zeros_like(last), ops.ones_like(last), last - 1, last):
        frame = ops.clip(frame, 0, frames - 1)
        # Window tap w of the frame reads sample `frame * strides + w - left` of the clip.
        start = frame * strides - clips.lefts
        first = ops.clip(-start, 0, window)
        stop = ops.clip(clips.lengths - start, 0, window)
        kernels = ops.take(cumulative, stop, axis=1) - ops.take(cumulative, first, axis=1)
        indices = ops.broadcast_to((frame * step)[None, :, None] + taps, tuple(ops.shape(kernels)))
        values = ops.sum(kernels * ops.take_along_axis(power, indices, axis=2), axis=2)
        outputs = ops.where(frame_index == frame[None, :, None], values[:, :, None], outputs)
    return ops.where(frame_index <= last[None, :, None], outputs, ops.zeros_like(outputs))


def band_limited_stages(model):
    """Every `BandLimitedGaborPooling` under `model` (a layer or model), itself included."""
    # Keras has no public recursive walk over sub-layers.
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)  # pylint: disable=protected-access
        if isinstance(layer, BandLimitedGaborPooling)
    ]


def update_band_plans(model):
    """Re-plans every band-limited filterbank of `model` from its current weights.

    Keras's `set_weights` on a model (`keras.Sequential([leaf_keras.Leaf(), ...])`, a
    functional model) assigns the variables of its sub-layers directly, so their own
    `set_weights` never runs, and a band-limited stage keeps the decimations it planned
    from the weights it had. Call this after such an assignment; `Leaf` and
    `AudioClassifier` do it in their `set_weights`, and loading a saved model re-plans
    each stage from its loaded weights.

    Args:
        model: a layer or model (built).

    Returns:
        The number of `BandLimitedGaborPooling` stages re-planned.
    """
    stages = band_limited_stages(model)
    for stage in stages:
        if stage.built:
            stage.update_band_plan()
    return len(stages)


# The constructor arguments `get_config` stores as they are, and those it serializes.
_CONFIG_VALUES = (
    "n_filters", "kernel_size", "strides", "sample_rate", "band_stds", "bandwidth_margin",
    "interpolation_taps", "block_size", "max_decimation", "leakage", "decimations",
    "learn_filters", "learn_pooling", "tolerance",
)  # fmt: skip
_CONFIG_OBJECTS = (
    "kernel_initializer", "pooling_initializer", "kernel_regularizer", "pooling_regularizer",
)  # fmt: skip


@keras.saving.register_keras_serializable(package="leaf_keras")
class BandLimitedGaborPooling(keras.layers.Layer):
    """Gabor filtering, squared modulus and Gaussian pooling, band-limited.

    Computes the same features as LEAF's `GaborConv1D` (SAME padding) ->
    `SquaredModulus` -> `GaussianLowpass` (SAME padding, stride `strides`),
    i.e. the energies before the 1e-5 floor and PCEN, from a decimated
    representation (see the module docstring). Relative error against the
    exact path (max |a - b| / max |b|) is ~1e-4 on the energies and a few
    1e-3 at most after PCEN, at initialization and after training, for
    about a tenth of the cost and a quarter of the memory, with the default
    setting; `tolerance` trades speed for down to 1e-5.

    The weights have the names and shapes of the exact path: "kernel"
    `(n_filters, 2)` (Gabor center frequency in radians per sample and
    standard deviation in samples, with `convolution.GaborConstraint`) and a
    second "kernel" `(1, 1, n_filters, 1)` (Gaussian pooling width, clipped
    to [2 / kernel_size, 0.5]); they are the attributes `gabor_kernel` and
    `pooling_kernel` and can be copied from / to `GaborConv1D` and
    `GaussianLowpass`. After assigning new Gabor parameters by hand, call
    `update_band_plan()` (done automatically by `set_weights` and when
    loading a saved model; after a model's `set_weights`, see
    `update_band_plans`).

    Args:
        n_filters: number of Gabor filters (complex filters, not channels).
        kernel_size: odd Gabor and pooling window length in samples (401 =
            25 ms at 16 kHz).
        strides: pooling stride in samples (160 = 10 ms at 16 kHz).
        sample_rate: sample rate in Hz, used by the default initializer.
        kernel_initializer: initializer of the Gabor parameters; defaults to
            `initializers.GaborInit(sample_rate=sample_rate, min_freq=60.,
            max_freq=7800.)`.
        pooling_initializer: initializer of the pooling widths; defaults to
            `keras.initializers.Constant(0.4)`.
        band_stds: kept half band of each filter, in standard deviations of
            its Gaussian frequency response (default 4.0, or set by
            `tolerance`). Larger is more accurate and slower.
        bandwidth_margin: the bands are sized for filters this much wider than
            at build time (default 1.1), so that accuracy holds while the
            bandwidths learn.
        interpolation_taps: half length, in decimated samples, of the
            windowed-sinc kernel used to evaluate the pooling (default 5, or
            set by `tolerance`).
        block_size: FFT block length, a multiple of `strides` >= 4 *
            kernel_size; by default `strides` times a power of two, about 12
            kernel sizes (5120 for the default 401 / 160).
        max_decimation: largest decimation factor (default 80); factors are
            divisors of `strides`.
        leakage: each kept band also holds the parts of the truncated
            filter's response above this fraction of its peak (default
            2e-3, or set by `tolerance`): the sidelobes of wide envelopes cut
            off by the kernel, through which weak low channels pick up loud
            out-of-band sound.
        decimations: optional list of per-filter decimation factors; by
            default they are planned from the Gabor parameters at build time.
        learn_filters: whether the Gabor parameters are trainable.
        learn_pooling: whether the pooling widths are trainable.
        kernel_regularizer: optional regularizer of the Gabor parameters.
        pooling_regularizer: optional regularizer of the pooling widths.
        tolerance: optional relative error (1e-5 to 1) that sets `band_stds`,
            `leakage` and `interpolation_taps` together, to the cheapest of
            `TOLERANCE_SETTINGS` within it: 1e-2 is the default setting
            (4, 2e-3, 5), 1e-3 (5, 1e-3, 7), 1e-4 (6, 1e-3, 11) and 1e-5
            (7, 1e-5, 11), at 8x, 6x, 5x and 2.3x the exact engine's speed in
            one run (speed ratios move between runs and machines). The bound
            is the worst error of LEAF's output after PCEN and of every
            weight's gradient measured against the exact engine on initial,
            perturbed, widest and trained-like weights (see
            benchmarks/README.md), not a proof for every signal. Pass either
            `tolerance` or those three arguments.
        **kwargs: base layer arguments (name, dtype, ...).

    Call arguments:
        inputs: the waveforms (below).
        lengths: optional int `(batch,)`: the batch holds clips of these
            lengths zero-padded at the end, and each clip gets the frames it
            gets alone (frames past its last are 0).

    Input shape:
        `(batch, time)` or `(batch, time, 1)` float waveforms, time >=
        kernel_size (time > 3 * strides when the time axis is not static).

    Output shape:
        `(batch, ceil(time / strides), n_filters)` pooled energies (before
        the floor and compression of `Leaf`).

    Example:
        >>> layer = BandLimitedGaborPooling(n_filters=40)
        >>> layer(np.zeros((2, 16000), "float32")).shape  # (2, 100, 40)
    """

    engine = "band_limited"

    def __init__(
        self,
        n_filters=40,
        kernel_size=401,
        strides=160,
        sample_rate=16000,
        kernel_initializer=None,
        pooling_initializer=None,
        band_stds=None,
        bandwidth_margin=1.1,
        interpolation_taps=None,
        block_size=None,
        max_decimation=80,
        leakage=None,
        decimations=None,
        learn_filters=True,
        learn_pooling=True,
        kernel_regularizer=None,
        pooling_regularizer=None,
        tolerance=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        settings = _resolved_settings(tolerance, band_stds, leakage, interpolation_taps)
        band_stds, leakage = settings["band_stds"], settings["leakage"]
        interpolation_taps = settings["interpolation_taps"]
        _check_arguments(
            n_filters,
            kernel_size,
            strides,
            sample_rate,
            band_stds,
            bandwidth_margin,
            interpolation_taps,
            max_decimation,
            leakage,
        )
        block_size = _checked_block_size(block_size, kernel_size, strides)
        self.n_filters = int(n_filters)
        self.kernel_size = self.window_size = int(kernel_size)
        self.strides = self.stride = int(strides)
        self.sample_rate = sample_rate
        self.band_stds = float(band_stds)
        self.bandwidth_margin = float(bandwidth_margin)
        self.interpolation_taps = int(interpolation_taps)
        self.block_size = int(block_size)
        self.max_decimation = int(max_decimation)
        self.leakage = float(leakage)
        self.tolerance = None if tolerance is None else float(tolerance)
        decimations = _checked_decimations(
            decimations, self.n_filters, self.strides, self.max_decimation
        )
        self.decimations = decimations
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer
            or initializers.GaborInit(sample_rate=sample_rate, min_freq=60.0, max_freq=7800.0)
        )
        self.pooling_initializer = keras.initializers.get(
            pooling_initializer or keras.initializers.Constant(0.4)
        )
        self.learn_filters = bool(learn_filters)
        self.learn_pooling = bool(learn_pooling)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.pooling_regularizer = keras.regularizers.get(pooling_regularizer)
        self.plan = None

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        self.gabor_kernel = self.add_weight(
            name="kernel",
            shape=(self.n_filters, 2),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=convolution.GaborConstraint(self.kernel_size),
            trainable=self.learn_filters,
            dtype=precision.working_dtype(self),
            autocast=False,
        )
        self.pooling_kernel = self.add_weight(
            name="kernel",
            shape=(1, 1, self.n_filters, 1),
            initializer=self.pooling_initializer,
            regularizer=self.pooling_regularizer,
            trainable=self.learn_pooling,
            dtype=precision.working_dtype(self),
            autocast=False,
        )
        # The initial values themselves when the initializer gives them without a
        # backend: a build inside a compiled function (`fit` on an unbuilt model)
        # cannot read the new variable.
        initial = getattr(self.kernel_initializer, "gabor_parameters", None)
        self.update_band_plan(None if initial is None else initial((self.n_filters, 2)))

    def update_band_plan(self, gabor_parameters=None):
        """(Re)chooses decimations and groups from the current parameters.

        Changes tensor shapes (so compiled functions retrace); call it after
        assigning Gabor parameters that differ a lot from those at build time.

        Args:
            gabor_parameters: numpy `(n_filters, 2)` to plan from instead of the
                `kernel` weight's value.
        """
        decimations = self.decimations
        if decimations is None:
            if gabor_parameters is None:
                gabor_parameters = self._concrete_gabor_kernel()
            decimations = band_plan.plan_decimations(
                gabor_parameters,
                self.kernel_size,
                self.strides,
                self.block_size,
                self.band_stds,
                self.bandwidth_margin,
                self.max_decimation,
                self.leakage,
            )
        self.plan = band_plan.BandPlan.create(
            decimations, self.kernel_size, self.block_size, self.interpolation_taps
        )

    def _concrete_gabor_kernel(self):
        try:
            return ops.convert_to_numpy(self.gabor_kernel)
        except Exception as error:  # pylint: disable=broad-except
            # Each backend raises its own type for a traced value.
            raise ValueError(
                f"{self.name}: the band-limited filterbank plans its decimations from the "
                "values of its Gabor parameters, which cannot be read inside a compiled "
                f"function ({type(error).__name__}). Build the frontend before compiling it "
                "(`frontend.build((None, None))` or one eager call), or use an initializer "
                "with a `gabor_parameters(shape)` method, as `GaborInit`."
            ) from error

    @property
    def planned_decimations(self):
        """numpy array `(n_filters,)` of the decimation used for each filter."""
        return None if self.plan is None else self.plan.decimations

    def set_weights(self, weights):
        super().set_weights(weights)
        self.update_band_plan()

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self.update_band_plan()

    def _check_input_shape(self, input_shape):
        waveforms.check_waveforms(input_shape, None, self.kernel_size, self.__class__.__name__)

    def clipped_kernel(self):
        """The Gabor parameters as used, `(n_filters, 2)` (mu, sigma)."""
        return self.gabor_kernel.constraint(
            ops.cast(self.gabor_kernel, precision.working_dtype(self))
        )

    @precision.keeps_float64
    def call(self, inputs, lengths=None):
        if self.plan is None:
            self.update_band_plan()
        x = ops.cast(inputs, precision.working_dtype(self))
        if len(x.shape) == 3:
            x = x[:, :, 0]
        if lengths is not None:
            return self._call_padded_clips(x, lengths)
        time = ops.shape(x)[1]
        static_time = isinstance(time, int)
        frames = (time + self.strides - 1) // self.strides
        pad_left, _ = padding_lib.same_padding(time, self.kernel_size, self.strides)
        return self._energies(x, frames, pad_left, _Edges(frames, pad_left, time, static_time))

    def _call_padded_clips(self, x, lengths):
        """The frames of each clip of a batch padded at the end, as the clip alone gets them.

        A clip alone of `n` samples is framed from `left(n)` samples before its start
        (SAME padding, 120 to 200 samples for 401 / 160 depending on `n` modulo the
        stride), and its edge frames leave out the taps past its end. So each row is
        shifted to start `left(n)` samples into the row, which puts every clip's first
        window at the start of the block grid (the grid of the clip alone, block for
        block), and the edge frames are recomputed at each clip's own edges.
        """
        lengths = ops.cast(lengths, "int32")
        time = ops.shape(x)[1]
        frames = (time + self.strides - 1) // self.strides
        lefts, _ = padding_lib.same_padding(lengths, self.kernel_size, self.strides)
        lefts = ops.cast(lefts, "int32")
        # Room for the largest left padding: SAME never pads more than kernel - 1.
        margin = (self.kernel_size - 1) // 2
        positions = ops.arange(time + margin, dtype="int32")[None, :] - lefts[:, None]
        inside = ops.logical_and(positions >= 0, positions < lengths[:, None])
        shifted = ops.take_along_axis(x, ops.clip(positions, 0, time - 1), axis=1)
        shifted = ops.where(inside, shifted, ops.zeros_like(shifted))
        clips = _Clips(lefts, lengths, (lengths + self.strides - 1) // self.strides)
        return self._energies(shifted, frames, 0, clips)

    def _energies(self, x, frames, pad_left, edges):
        """Pooled energies `(batch, frames, n_filters)` of `x`, whose first window starts
        `pad_left` samples before it; `edges` (`_Edges` or `_Clips`) says where the
        signal's edges are."""
        spectra = _block_spectra(
            x, self.plan, self.block_size, self.strides, self.kernel_size, frames, pad_left
        )
        bands = self.filter_bands()
        energies = ops.concatenate(
            [
                self._group_energies(
                    decimation,
                    indices,
                    self.trimmed_power(decimation, self.group_power(indices, spectra, bands)),
                    bands,
                    edges,
                    frames,
                )
                for decimation, indices in self.plan.groups
            ],
            axis=0,
        )
        energies = ops.take(energies, self.plan.inverse_order, axis=0)
        return ops.transpose(energies, (1, 2, 0))

    # The steps of `call`, which `streaming` also runs on the blocks of a stream.

    def filter_bands(self):
        """What every group needs of the filters: their DFTs at the block length
        `(filt_real, filt_imag)`, the Gaussian pooling windows `(n, K)` and
        the bin of each center frequency."""
        kernel = self.clipped_kernel()
        filt_real, filt_imag = _circular_spectra(
            *impulse_responses.gabor_filters(kernel, self.kernel_size), self.block_size
        )
        windows = impulse_responses.gaussian_lowpass(
            ops.reshape(
                ops.cast(self.pooling_kernel, precision.working_dtype(self)), (self.n_filters, 1)
            ),
            self.kernel_size,
        )
        center_bins = ops.cast(
            ops.round(ops.stop_gradient(kernel[:, 0]) * (self.block_size / (2 * math.pi))), "int32"
        )
        return _Bands(filt_real, filt_imag, windows, center_bins)

    def block_spectra(self, blocks):
        """Periodic spectra of overlap-save blocks `[batch, n, block_size]`."""
        return _periodic_spectrum(blocks, self.block_size // int(self.plan.decimations.min()))

    def group_power(self, indices, spectra, bands):
        """`|y|^2` of the filters `indices` at every decimation-th sample of
        the blocks' kept outputs, `[count, batch, blocks * hop / decimation]`:
        grid point i is at `valid_start + i * decimation` of the first block."""
        spec_real, spec_imag = spectra
        plan, block = self.plan, self.block_size
        decimation = int(plan.decimations[indices[0]])
        length = block // decimation
        count = len(indices)
        indices = ops.convert_to_tensor(indices.astype("int32"))
        centers = ops.take(bands.center_bins, indices)
        # The band of each filter around its (learned) center: a contiguous
        # slice of the periodic spectrum (cheaper than a gather, whose output
        # layout makes XLA on CPU transpose every later pass).
        starts = (centers - length // 2) % block
        size = (ops.shape(spec_real)[0], ops.shape(spec_real)[1], length)
        # Typed zeros: under JAX's 64-bit mode Python ints would be int64 next to
        # the int32 starts, which dynamic_slice refuses.
        zero = ops.zeros((), "int32")
        if keras.backend.backend() == "tensorflow":
            # TensorFlow's XLA bridge compiles a slice's start as a constant: one that
            # follows a learned center frequency would recompile the training step at
            # every step (10-25 s each). A gather of the same bins compiles once.
            offsets = ops.arange(length, dtype="int32")

            def band(spec, i):
                return ops.take(spec, starts[i] + offsets, axis=2)

        else:

            def band(spec, i):
                return ops.slice(spec, (zero, zero, starts[i]), size)

        x_real, x_imag = (
            ops.stack([band(spec, i) for i in range(count)], axis=0)
            for spec in (spec_real, spec_imag)
        )
        bins = (centers[:, None] - length // 2 + ops.arange(length, dtype="int32")[None, :]) % block
        g_real, g_imag = (
            ops.take_along_axis(ops.take(filt, indices, axis=0), bins, axis=1)
            for filt in (bands.filt_real, bands.filt_imag)
        )
        # |y|^2 at every decimation-th sample of the block, filters major:
        # pooling then runs along the contiguous time axis, as products
        # batched over filters.
        batch, n_blocks = size[0], size[1]
        power = band_power(
            ops.reshape(x_real, (count, -1, length)),
            ops.reshape(x_imag, (count, -1, length)),
            g_real,
            g_imag,
        )
        power = ops.reshape(power, (count, batch, n_blocks, length))
        power = power / float(block) ** 2
        power = power[
            ..., plan.valid_start // decimation : (plan.valid_start + plan.hop) // decimation
        ]
        return ops.reshape(power, (count, batch, n_blocks * (plan.hop // decimation)))

    def grid_start(self, decimation):
        """Leading points of `group_power`'s grid that no pooling reads: the
        pooling grid starts `interpolation_taps` points before the first
        window, `guard` samples after the grid's start."""
        return (self.plan.guard - self.interpolation_taps * decimation) // decimation

    def trimmed_power(self, decimation, power):
        return power[:, :, self.grid_start(decimation) :]

    def pooling_kernels(self, decimation, indices, windows):
        """`(windows, matrix, taps)` of the group: its pooling windows `(n, K)`
        and the interpolation `matrix` `(K, taps)` onto its grid (window tap
        j of frame f reads grid points `f * strides / decimation + q`)."""
        matrix, kernel_len = band_plan.interpolation_matrix(
            decimation, self.kernel_size, self.interpolation_taps, windows.dtype
        )
        return ops.take(windows, indices, axis=0), matrix, kernel_len

    def _group_energies(self, decimation, indices, power, bands, edges, frames):
        """Pooled energies `[count, batch, frames]` of the filters `indices`
        from their trimmed power."""
        windows, matrix, kernel_len = self.pooling_kernels(decimation, indices, bands.windows)
        step = self.strides // decimation
        pooled = block_pooling.channels_major_block_pooling(
            power, ops.matmul(windows, matrix), step, frames
        )
        with_edges = _with_clip_edge_frames if isinstance(edges, _Clips) else _with_edge_frames
        return with_edges(pooled, power, windows, matrix, kernel_len, step, edges, self.strides)

    def compute_output_shape(self, input_shape):
        self._check_input_shape(input_shape)
        time = input_shape[1]
        frames = None if time is None else -(-time // self.strides)
        return (input_shape[0], frames, self.n_filters)

    def compute_output_spec(self, inputs, lengths=None, training=None):
        # `training` (unused) is what `keras.Sequential.compute_output_spec` passes to
        # every stage of an unbuilt frontend.
        del lengths, training
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=precision.working_dtype(self)
        )

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in _CONFIG_VALUES})
        serialize = keras.saving.serialize_keras_object
        config.update({name: serialize(getattr(self, name)) for name in _CONFIG_OBJECTS})
        return config
