"""LEAF and its learnable baselines as Keras 3 models.

Every frontend takes float waveforms `[batch, time]` or `[batch, time, 1]`
and returns features `[batch, frames, n_filters]`, `frames = ceil(time /
stride)` (`TimeDomainFilterbanks`: VALID pooling, `(time - window_size) //
stride + 1`). Defaults are those of the paper: 16 kHz, 40 filters, 25 ms
windows (401 taps), 10 ms stride (160 samples). The mel baselines live in
`mel_frontend` and are importable from here, as in leaf-audio.

Reference: Zeghidour, Teboul, de Chaumont Quitry, Tagliasacchi, "LEAF: A
Learnable Frontend for Audio Classification", ICLR 2021,
https://arxiv.org/abs/2101.08596.
"""

import re

import keras
import numpy as np
from keras import ops

from leaf_keras import band_limited as band_limited_lib
from leaf_keras import convolution
from leaf_keras import filterbank as filterbank_lib
from leaf_keras import initializers
from leaf_keras import masking
from leaf_keras import pooling
from leaf_keras import postprocessing
from leaf_keras import serialization
from leaf_keras import stages
from leaf_keras import utils
from leaf_keras import waveforms

# leaf-audio's module map: its frontend.py also held these.
from leaf_keras.mel_frontend import MelFilterbanks  # noqa: F401
from leaf_keras.mel_frontend import MelPCEN  # noqa: F401
from leaf_keras.ops import precision
from leaf_keras.postprocessing import log_compression  # noqa: F401
from leaf_keras.stages import SquaredModulus  # noqa: F401

# The band-limited engine's setting for `Leaf()`: at 1e-4 it meets the parity tests' bound
# against leaf-audio (outputs and gradients of every LEAF reference case), at ~1/3 of the
# exact engine's time and memory (benchmarks/README.md).
DEFAULT_TOLERANCE = 1e-4


def _snake_case(name):
    """Keras's `to_snake_case`: the name its saver gives a listed layer."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@keras.saving.register_keras_serializable(package="leaf_keras")
class Leaf(keras.Sequential):
    """LEAF, a learnable audio frontend (and the base of its baselines).

    A `keras.Sequential` of the paper's stages, in its order (Section 3):
    `waveform_input` (shape and dtype check) → optional `preemp_conv`
    (pre-emphasis, `Conv1D(1, 2)` with `PreempInit`) → `filterbank`
    (complex Gabor convolution `GaborConv1D` with 2 * n_filters real
    channels → squared modulus → Gaussian lowpass pooling `GaussianLowpass`
    of stride `window_stride`) → `energy_floor` (`max(x, 1e-5)`) →
    `compression_fn` (learnable `PCENLayer` by default) → optional
    `instance_norm` → optional `augment` (`SpecAugment`, training only).
    Each stage is an attribute and an entry of `layers`, and every entry of
    `layers` runs. At initialization the filters approximate a 40-band mel
    filterbank (60–7800 Hz).

    The `filterbank` stage is computed by one of three engines, chosen here
    (see `leaf_keras.filterbank`): `"fused"` (exact, channels first, the
    fastest exact engine), `"layers"` (exact, the convolution, activation
    and pooling layers one after the other), or `"band_limited"` (LEAF's
    Gabor filterbank from a decimated representation, within `tolerance` of
    the exact engines, several times faster). The default `"auto"` is the
    band-limited engine at `tolerance=1e-4` (`DEFAULT_TOLERANCE`: outputs
    and gradients within the parity tests' 1e-4 of leaf-audio, ~1/3 of the
    exact engine's time and memory). It stays exact, `"fused"` where the
    stages allow it and `"layers"` otherwise, for stages other than LEAF's
    Gabor convolution, squared modulus and Gaussian pooling, in float64, and
    with `band_limited=False`. Pass `filterbank="fused"` for the exact
    engine. All engines hold the same weights (`BandLimitedGaborPooling`
    under other names), so they can be copied between frontends of
    different engines.

    The constructor keeps the original argument names. Differences: `None`
    defaults create fresh default objects (the original shared one default
    PCEN instance between frontends), `compression_fn` must be a layer or
    None (identity), and classes are serialized by registered name.

    Args:
        learn_pooling: whether the pooling filters are learned.
        learn_filters: whether the convolution (and pre-emphasis) is learned.
        conv1d_cls: convolution class, called with `filters=2 * n_filters,
            kernel_size, strides=1, padding="same", use_bias=False,
            kernel_initializer, kernel_regularizer, name, trainable`.
        activation: layer applied after the convolution (default
            `SquaredModulus()`).
        pooling_cls: pooling class, called with `kernel_size, strides,
            padding="same", use_bias=False, kernel_initializer,
            kernel_regularizer, trainable`.
        n_filters: number of output channels.
        sample_rate: sampling rate in Hz.
        window_len: window length in ms (`window_size = int(sample_rate *
            window_len // 1000 + 1)` taps).
        window_stride: stride in ms (`stride = int(sample_rate *
            window_stride // 1000)` samples).
        compression_fn: compression layer; the default is LEAF's PCEN
            (`postprocessing.leaf_pcen()`); None applies no compression.
            `log_compression` and ``functools.partial(log_compression,
            log_offset=...)``, as leaf-audio's code passes them, are stored as
            `LogCompression` layers.
        preemp: whether to add the pre-emphasis stage.
        preemp_init: initializer of the pre-emphasis (default PreempInit()).
        complex_conv_init: initializer of the convolution (default
            `GaborInit(sample_rate=16000, min_freq=60, max_freq=7800)`).
        pooling_init: initializer of the pooling (default Constant(0.4)).
        regularizer_fn: optional regularizer of learned filters/pooling.
        mean_var_norm: whether to add per-channel instance normalization.
        spec_augment: whether to add SpecAugment (active with training=True).
        filterbank: the engine of the filterbank stage: "auto" (default,
            see above), "fused", "layers" or "band_limited" (which needs the
            default Gabor convolution, squared modulus and Gaussian pooling).
        band_limited: alias of `filterbank="band_limited"` when True; False
            makes "auto" exact.
        tolerance: relative error of the band-limited engine against the
            exact one (1e-5 to 1; see `BandLimitedGaborPooling`): with
            `filterbank="auto"` it selects the band-limited engine, at the
            cheapest setting within it. Default: None (1e-4 where "auto"
            chooses the band-limited engine; with
            `filterbank="band_limited"`, that engine's own default setting,
            ~1e-2, the fastest).
        name: model name.

    Input shape:
        `(batch, time)` or `(batch, time, 1)`, float, time >= window_size.

    Output shape:
        `(batch, ceil(time / stride), n_filters)`.

    Example:
        >>> leaf = Leaf()
        >>> leaf(np.zeros((2, 16000), "float32")).shape  # (2, 100, 40)
        >>> [layer.name for layer in leaf.layers]
        ['waveform_input', 'tfbanks_band_limited', 'energy_floor', 'PCEN']
        >>> exact = Leaf(filterbank="fused")  # the paper's convolutions, exactly
        >>> [layer.name for layer in exact.layers]
        ['waveform_input', 'filterbank', 'energy_floor', 'PCEN']
    """

    # Constructor arguments that a subclass (a baseline frontend) fixes: the
    # caller may not pass them and the config does not store them.
    _FIXED = ()

    def __init__(
        self,
        learn_pooling=True,
        learn_filters=True,
        conv1d_cls=convolution.GaborConv1D,
        activation=None,
        pooling_cls=pooling.GaussianLowpass,
        n_filters=40,
        sample_rate=16000,
        window_len=25.0,
        window_stride=10.0,
        compression_fn=serialization.DEFAULT,
        preemp=False,
        preemp_init=None,
        complex_conv_init=None,
        pooling_init=None,
        regularizer_fn=None,
        mean_var_norm=False,
        spec_augment=False,
        filterbank="auto",
        band_limited=None,
        tolerance=None,
        name="leaf",
        **kwargs,
    ):
        if int(n_filters) < 1:
            raise ValueError(f"n_filters must be >= 1, got {n_filters}.")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}.")
        self.window_size = utils.window_size_in_samples(sample_rate, window_len)
        self.stride = utils.stride_in_samples(sample_rate, window_stride)
        if self.stride < 1:
            raise ValueError(
                f"window_stride={window_stride} ms at sample_rate={sample_rate}"
                " gives a stride below one sample."
            )
        self.n_filters = int(n_filters)
        self.sample_rate = sample_rate
        self.window_len = float(window_len)
        self.window_stride = float(window_stride)
        self.learn_pooling = bool(learn_pooling)
        self.learn_filters = bool(learn_filters)
        self.conv1d_cls = serialization.deserialize_class(conv1d_cls)
        self.pooling_cls = serialization.deserialize_class(pooling_cls)
        self.preemp_init = keras.initializers.get(preemp_init or initializers.PreempInit())
        self.complex_conv_init = keras.initializers.get(
            complex_conv_init
            or initializers.GaborInit(sample_rate=16000, min_freq=60.0, max_freq=7800.0)
        )
        self.pooling_init = keras.initializers.get(pooling_init or keras.initializers.Constant(0.4))
        self.regularizer_fn = keras.regularizers.get(regularizer_fn)
        activation = (
            stages.SquaredModulus()
            if activation is None
            else serialization.deserialize_layer(activation)
        )
        engine = _engine_argument(filterbank, band_limited, tolerance)
        if (
            engine == "auto"
            and band_limited is None
            and _band_limited_by_default(self, activation, kwargs.get("dtype"))
        ):
            engine, tolerance = "band_limited", DEFAULT_TOLERANCE
        self.tolerance = None if tolerance is None else float(tolerance)

        waveform_input = waveforms.WaveformInput(min_length=self.window_size)
        preemp_conv = _preemphasis_stage(self) if preemp else None
        filterbank_stage = _filterbank_stage(self, engine, activation)
        energy_floor = stages.EnergyFloor(1e-5)
        compression_fn = _compression_argument(compression_fn)
        instance_norm = (
            postprocessing.InstanceNormalization(epsilon=1e-6, name="tfbanks_instancenorm")
            if mean_var_norm
            else None
        )
        augment = postprocessing.SpecAugment() if spec_augment else None
        # keras.Sequential takes no dtype: it is set on the stack and its stages below.
        dtype = kwargs.pop("dtype", None)
        paper_order = [
            waveform_input,
            preemp_conv,
            filterbank_stage,
            energy_floor,
            compression_fn,
            instance_norm,
            augment,
        ]
        super().__init__(
            layers=[stage for stage in paper_order if stage is not None], name=name, **kwargs
        )
        self.waveform_input = waveform_input
        self.preemp_conv = preemp_conv
        self.filterbank = filterbank_stage
        self.energy_floor = energy_floor
        self.compression_fn = compression_fn
        self.instance_norm = instance_norm
        self.augment = augment
        self.preemp = bool(preemp)
        self.mean_var_norm = bool(mean_var_norm)
        self.spec_augment = bool(spec_augment)
        _alias_legacy_weight_paths(self, paper_order)
        if dtype is not None:
            self.dtype_policy = dtype
            precision.share_dtype_policy(self)

    @classmethod
    def _reject_fixed(cls, kwargs):
        """Raises ValueError if `kwargs` sets an argument this class fixes."""
        given = sorted(set(kwargs) & set(cls._FIXED))
        if given:
            raise ValueError(
                f"{cls.__name__} fixes {', '.join(given)} (it is the paper's "
                f"{cls.__name__}); build a Leaf(...) to choose them."
            )

    @property
    def band_limited(self):
        """Whether the filterbank is the band-limited engine."""
        return self.filterbank.engine == "band_limited"

    @property
    def activation(self):
        """The activation of the filterbank (SquaredModulus when band-limited)."""
        if self.band_limited:
            return stages.SquaredModulus()
        return self.filterbank.activation

    @property
    def complex_conv(self):
        """The convolution of the filterbank, None when band-limited."""
        return None if self.band_limited else self.filterbank.conv

    @property
    def pooling(self):
        """The pooling of the filterbank (the whole stage when band-limited)."""
        return self.filterbank if self.band_limited else self.filterbank.pooling

    @property
    def band_limited_filterbank(self):
        """The band-limited filterbank stage, or None."""
        return self.filterbank if self.band_limited else None

    def set_weights(self, weights):
        # Keras assigns the variables of the stages directly, so the band-limited stage's
        # own `set_weights` never runs: re-plan its decimations here, as a saved and
        # reloaded frontend plans them from its loaded weights.
        super().set_weights(weights)
        band_limited_lib.update_band_plans(self)

    def build(self, input_shape=None):
        if input_shape is not None:
            input_shape = tuple(input_shape)
            waveforms.check_waveforms(input_shape, None, self.window_size, self.name)
            # Build for any batch size and length: the stages never depend
            # on the number of samples.
            input_shape = (None, None) + input_shape[2:]
        super().build(input_shape)

    @precision.keeps_float64
    def call(self, inputs, training=None, mask=None, **kwargs):
        waveforms.check_waveforms(inputs.shape, inputs.dtype, self.window_size, self.name)
        if mask is None:
            return super().call(inputs, training=training, **kwargs)
        # A batch padded at the end: the filterbank lays out each clip as it would alone
        # (`Filterbank`, `BandLimitedGaborPooling`), and a whole-clip normalization reads
        # each clip's own frames.
        lengths = masking.lengths_from_mask(mask)
        frame_mask = self.compute_mask(inputs, mask)
        # A copy without the samples mask that Keras may have attached to `inputs`: the
        # stages take `lengths`, and a stage given a masked tensor warns that it drops it.
        outputs = ops.copy(inputs)
        for stage in self.layers:
            if stage is self.filterbank:
                outputs = stage(outputs, lengths=lengths)
            elif stage is self.instance_norm:
                outputs = stage(outputs, mask=frame_mask)
            else:
                outputs = stage(outputs, training=training)
        return outputs

    def frame_lengths(self, num_samples):
        """Frames of a clip of `num_samples` samples (an int, or an int tensor `(batch,)`).

        The frames of a clip padded at the end are the clip's own up to this count:
        `mask` in `call` and `compute_mask` mark them.
        """
        padding = getattr(self.pooling, "padding", "same")
        return masking.window_lengths(num_samples, self.window_size, self.stride, padding)

    def compute_mask(self, inputs, mask=None):
        """The frames mask `(batch, frames)` of a samples mask `(batch, time)`, or None."""
        if mask is None:
            return None
        valid = getattr(self.pooling, "padding", "same") == "valid"
        return masking.frames_mask(mask, self.stride, self.window_size - 1 if valid else 0)

    def compute_output_shape(self, input_shape):
        waveforms.check_waveforms(input_shape, None, self.window_size, self.name)
        return super().compute_output_shape(input_shape)

    def gabor_center_frequencies_hz(self):
        """Clipped Gabor center frequencies in Hz, numpy `(n_filters,)`."""
        mu, _ = self._gabor_parameters()
        return mu * self.sample_rate / (2.0 * np.pi)

    def gabor_bandwidths_hz(self):
        """Full width at half maximum of each Gabor filter's frequency
        response in Hz, `2 sqrt(2 ln 2) / sigma * sample_rate / (2 pi)`."""
        _, sigma = self._gabor_parameters()
        return 2.0 * np.sqrt(2.0 * np.log(2.0)) / sigma * self.sample_rate / (2.0 * np.pi)

    def _gabor_parameters(self):
        """Clipped (mu, sigma) of the Gabor filters, numpy."""
        stage = self.band_limited_filterbank or self.complex_conv
        if not isinstance(
            stage, (band_limited_lib.BandLimitedGaborPooling, convolution.GaborConv1D)
        ):
            raise ValueError(f"{self.name} has no Gabor convolution.")
        if not stage.built:
            stage.build((None, None, 1))
        kernel = keras.ops.convert_to_numpy(stage.clipped_kernel())
        return np.asarray(kernel[:, 0]), np.asarray(kernel[:, 1])

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "learn_pooling": self.learn_pooling,
            "learn_filters": self.learn_filters,
            "conv1d_cls": serialization.serialize_class(self.conv1d_cls),
            "activation": serialize(self.activation),
            "pooling_cls": serialization.serialize_class(self.pooling_cls),
            "n_filters": self.n_filters,
            "sample_rate": self.sample_rate,
            "window_len": self.window_len,
            "window_stride": self.window_stride,
            "compression_fn": serialize(self.compression_fn),
            "preemp": self.preemp,
            "preemp_init": serialize(self.preemp_init),
            "complex_conv_init": serialize(self.complex_conv_init),
            "pooling_init": serialize(self.pooling_init),
            "regularizer_fn": serialize(self.regularizer_fn),
            "mean_var_norm": self.mean_var_norm,
            "spec_augment": self.spec_augment,
            "filterbank": self.filterbank.engine,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }
        if self.tolerance is not None:
            config["tolerance"] = self.tolerance
        for key in self._FIXED:
            config.pop(key)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def _regularizer(frontend, learned):
    return frontend.regularizer_fn if learned else None


def _preemphasis_stage(frontend):
    """The learnable pre-emphasis, `Conv1D(1, 2)`."""
    return keras.layers.Conv1D(
        filters=1,
        kernel_size=2,
        strides=1,
        padding="same",
        use_bias=False,
        kernel_initializer=frontend.preemp_init,
        kernel_regularizer=_regularizer(frontend, frontend.learn_filters),
        name="tfbanks_preemp",
        trainable=frontend.learn_filters,
    )


def _filterbank_stage(frontend, engine, activation):
    """The filterbank stage of `frontend`, computed by `engine`."""
    if engine == "band_limited":
        return _band_limited_stage(frontend, activation)
    conv = frontend.conv1d_cls(
        filters=2 * frontend.n_filters,
        kernel_size=frontend.window_size,
        strides=1,
        padding="same",
        use_bias=False,
        kernel_initializer=frontend.complex_conv_init,
        kernel_regularizer=_regularizer(frontend, frontend.learn_filters),
        name="tfbanks_complex_conv",
        trainable=frontend.learn_filters,
    )
    pool = frontend.pooling_cls(
        kernel_size=frontend.window_size,
        strides=frontend.stride,
        padding="same",
        use_bias=False,
        kernel_initializer=frontend.pooling_init,
        kernel_regularizer=_regularizer(frontend, frontend.learn_pooling),
        trainable=frontend.learn_pooling,
    )
    return filterbank_lib.make_filterbank(engine, conv, activation, pool)


def _band_limited_stage(frontend, activation):
    """The `BandLimitedGaborPooling` stage of a LEAF `frontend`."""
    if not _has_leaf_stages(frontend, activation):
        raise ValueError(
            "filterbank='band_limited' computes LEAF's Gabor "
            "convolution, squared modulus and Gaussian pooling; it "
            f"cannot replace conv1d_cls={frontend.conv1d_cls.__name__}, "
            f"activation={activation!r}, "
            f"pooling_cls={frontend.pooling_cls.__name__}."
        )
    return band_limited_lib.BandLimitedGaborPooling(
        n_filters=frontend.n_filters,
        kernel_size=frontend.window_size,
        strides=frontend.stride,
        sample_rate=frontend.sample_rate,
        kernel_initializer=frontend.complex_conv_init,
        pooling_initializer=frontend.pooling_init,
        learn_filters=frontend.learn_filters,
        learn_pooling=frontend.learn_pooling,
        kernel_regularizer=_regularizer(frontend, frontend.learn_filters),
        pooling_regularizer=_regularizer(frontend, frontend.learn_pooling),
        tolerance=frontend.tolerance,
        name="tfbanks_band_limited",
    )


def _alias_legacy_weight_paths(frontend, paper_order):
    """Lets `.keras` files written before the filterbank stage load.

    Those files kept the convolution, activation and pooling as stages
    of the frontend itself, at `layers/<snake-case class name>` (the
    path Keras's saver gives a listed layer). Keras's loader walks a
    layer's `dir()` and retries a layer that it could not load at its
    own path, so an instance attribute of that name, set here without
    Keras's tracking, gives it the old path of the same layer. New files
    store the layers under `layers/filterbank/...` and never use it.
    """
    if frontend.band_limited:
        return  # BandLimitedGaborPooling was already a listed stage.
    fb = frontend.filterbank
    old_order = []
    for stage in paper_order:
        old_order.extend([fb.conv, fb.activation, fb.pooling] if stage is fb else [stage])
    used = {}
    for stage in old_order:
        if stage is None:
            continue
        name = _snake_case(stage.__class__.__name__)
        used[name] = used.get(name, -1) + 1
        if used[name]:
            name = f"{name}_{used[name]}"
        if stage in (fb.conv, fb.activation, fb.pooling):
            object.__setattr__(frontend, f"layers/{name}", stage)


def _has_leaf_stages(frontend, activation):
    """Whether `frontend` has LEAF's Gabor convolution, squared modulus and Gaussian
    pooling: the stages that the band-limited engine computes."""
    return (
        frontend.conv1d_cls is convolution.GaborConv1D
        and isinstance(activation, stages.SquaredModulus)
        and frontend.pooling_cls is pooling.GaussianLowpass
    )


def _band_limited_by_default(frontend, activation, dtype):
    """Whether `filterbank="auto"` means the band-limited engine for `frontend`.

    It does for LEAF's own stages (Gabor convolution, squared modulus,
    Gaussian pooling), the only ones it computes, except in float64: who asks
    for float64 asks for more than a 1e-4 engine gives, so there "auto" stays
    exact.
    """
    if not _has_leaf_stages(frontend, activation):
        return False
    policy = keras.dtype_policies.get(dtype) if dtype is not None else keras.config.dtype_policy()
    return not precision.is_float64(policy)


def _engine_argument(filterbank, band_limited, tolerance=None):
    """The engine of `filterbank`, with `band_limited` as its alias; a
    `tolerance` selects the band-limited engine and refuses the others."""
    if tolerance is not None:
        engine = _engine_argument(filterbank, band_limited)
        if engine not in ("auto", "band_limited"):
            raise ValueError(
                f"tolerance={tolerance!r} sets the accuracy of the band-limited engine; "
                f"filterbank={engine!r} is exact. Pass filterbank='band_limited' or no "
                "tolerance."
            )
        return "band_limited"
    if band_limited is None:
        return filterbank
    if band_limited and filterbank in ("auto", "band_limited"):
        return "band_limited"
    if not band_limited and filterbank != "band_limited":
        return filterbank
    raise ValueError(
        f"band_limited={band_limited} contradicts filterbank={filterbank!r}; pass filterbank only."
    )


def _compression_argument(compression_fn):
    """LEAF's PCEN for the default, else the given layer (or None)."""
    if serialization.is_default(compression_fn):
        return postprocessing.leaf_pcen()
    return postprocessing.compression_layer(compression_fn)


@keras.saving.register_keras_serializable(package="leaf_keras")
class TimeDomainFilterbanks(Leaf):
    """Time-Domain Filterbanks (Zeghidour et al., 2018,
    https://arxiv.org/abs/1711.01161), as in the LEAF paper.

    A plain `Conv1D` with 2 * n_filters free filters initialized as Gabor
    filters matching mel filters (real/imag interleaved), squared modulus,
    a shared squared-Hanning pooling filter (`LearnablePooling1D`, VALID:
    `(time - window_size) // stride + 1` frames), `max(x, 1e-5)` and
    `log(x + 1e-5)`.

    Args:
        sample_rate: sampling rate in Hz.
        name: model name.
        **kwargs: other `Leaf` arguments (not the ones fixed here:
            conv1d_cls, activation, pooling_cls, complex_conv_init,
            pooling_init, compression_fn).
    """

    _FIXED = (
        "conv1d_cls",
        "activation",
        "pooling_cls",
        "complex_conv_init",
        "pooling_init",
        "compression_fn",
    )

    def __init__(self, sample_rate=16000, name="tfbanks", **kwargs):
        self._reject_fixed(kwargs)
        super().__init__(
            conv1d_cls=keras.layers.Conv1D,
            activation=stages.SquaredModulus(),
            pooling_cls=pooling.LearnablePooling1D,
            complex_conv_init=initializers.GaborInit(
                sample_rate=sample_rate, min_freq=60.0, max_freq=7800.0
            ),
            pooling_init=initializers.LowpassInit(
                sample_rate=sample_rate, window_type=utils.WindowType.SQUARED_HANNING
            ),
            compression_fn=postprocessing.LogCompression(log_offset=1e-5),
            sample_rate=sample_rate,
            name=name,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="leaf_keras")
class SincNet(Leaf):
    """SincNet (Ravanelli & Bengio, 2018, https://arxiv.org/abs/1808.00158).

    `SincConv1D` band-pass filters (initialized on the mel scale,
    `SincInit`), LeakyReLU(0.2), max pooling, `max(x, 1e-5)` and layer
    normalization over channels.

    Args:
        name: model name.
        **kwargs: other `Leaf` arguments (not conv1d_cls, activation,
            pooling_cls, complex_conv_init, compression_fn).
    """

    _FIXED = ("conv1d_cls", "activation", "pooling_cls", "complex_conv_init", "compression_fn")

    def __init__(self, name="sincnet", **kwargs):
        self._reject_fixed(kwargs)
        super().__init__(
            conv1d_cls=convolution.SincConv1D,
            complex_conv_init=initializers.SincInit(),
            activation=keras.layers.LeakyReLU(negative_slope=0.2),
            pooling_cls=pooling.MaxPooling1D,
            compression_fn=keras.layers.LayerNormalization(name="layer_normalization"),
            name=name,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="leaf_keras")
class SincNetPlus(Leaf):
    """SincNet+: SincNet with Gaussian lowpass pooling and fixed PCEN.

    `SincConv1D`, LeakyReLU(0.2), `GaussianLowpass` (init 0.4), `max(x,
    1e-5)` and a non-learned `PCENLayer()` (alpha 0.96, smoothing 0.04,
    delta 2, root 2, floor 1e-6).

    Args:
        name: model name.
        **kwargs: other `Leaf` arguments (not conv1d_cls, activation,
            pooling_cls, complex_conv_init, pooling_init, compression_fn).
    """

    _FIXED = (
        "conv1d_cls",
        "activation",
        "pooling_cls",
        "complex_conv_init",
        "pooling_init",
        "compression_fn",
    )

    def __init__(self, name="sincnet_plus", **kwargs):
        self._reject_fixed(kwargs)
        super().__init__(
            conv1d_cls=convolution.SincConv1D,
            complex_conv_init=initializers.SincInit(),
            activation=keras.layers.LeakyReLU(negative_slope=0.2),
            pooling_cls=pooling.GaussianLowpass,
            pooling_init=keras.initializers.Constant(0.4),
            compression_fn=postprocessing.PCENLayer(),
            name=name,
            **kwargs,
        )
