"""The filterbank stage of a frontend: convolution -> activation -> pooling.

LEAF and its learnable baselines share one stage that turns waveforms into
pooled filter energies (Zeghidour et al., "LEAF: A Learnable Frontend for
Audio Classification", ICLR 2021, Sections 3.1-3.2). Three engines compute
it; a frontend chooses one when it is constructed (`Leaf(filterbank=...)`)
and lists it in `frontend.layers`:

- `"layers"` (`Filterbank(engine="layers")`): the three layers one after
  the other, in the `[batch, time, channels]` layout. The reference: every
  sub-layer's `call` runs.
- `"fused"` (`Filterbank(engine="fused")`): the same values from the same weights,
  computed channels first: the filters are correlated in pairs, one complex
  FFT per pair (`ops.fft_correlation`), directly in the padded layout the
  pooling reads (`pooling.pool_padded_channels_major`). It avoids the
  full-rate `[batch, time, 2 * n_filters]` intermediates, whose transposes
  cost more than the convolution itself.
- `"band_limited"` (`band_limited.BandLimitedGaborPooling`): LEAF's Gabor
  filterbank computed from a decimated representation, within a chosen
  `tolerance` of the exact engines (Gabor convolution, squared modulus and
  Gaussian pooling only). `Leaf()` uses it at 1e-4 unless told otherwise
  (`frontend.DEFAULT_TOLERANCE`).

`make_filterbank` builds the stage for an engine name. The two exact
engines are one class, so their weights are saved at the same paths.
"""

import keras
from keras import ops

from leaf_keras import convolution
from leaf_keras import pooling
from leaf_keras import serialization
from leaf_keras import stages
from leaf_keras.ops import fft_correlation
from leaf_keras.ops import precision

ENGINES = ("auto", "fused", "layers", "band_limited")

# Poolings that can read a channels-major padded activation
# (`padded_layout` / `pool_padded_channels_major`).
_FUSABLE_POOLINGS = (
    pooling.GaussianLowpass,
    pooling.LearnablePooling1D,
    pooling.ChannelWiseLearnablePooling1D,
    pooling.MaxPooling1D,
)


@keras.saving.register_keras_serializable(package="leaf_keras")
class Filterbank(keras.layers.Layer):
    """Convolution, activation and pooling: the filterbank stage of a frontend.

    Computes `pooling(activation(conv(waveforms)))` with one of two exact
    engines, fixed at construction:

    - `engine="layers"`: the three sub-layers called one after the other,
      in the `[batch, time, channels]` layout.
    - `engine="fused"`: the same values (up to float32 round-off) from the
      same weights, computed channels first without the `[batch, time,
      channels]` intermediates, whose transposes cost more than the
      convolution itself. The filters are correlated in pairs, `h_2k + i
      h_2k+1`, one complex FFT per pair, in overlap-save blocks of 3200
      samples whose FFTs stay in the L1 cache
      (`ops.fft_correlation.correlation_energies` for a `SquaredModulus`,
      whose complex channels are exactly these pairs, and
      `correlation_outputs` otherwise), directly in the pooling's padded
      layout `[channels, batch, time]`, which the pooling reads once
      (`pool_padded_channels_major`). Only the small pooled result is
      transposed. With a `SquaredModulus` and a linear pooling (LEAF's),
      the pairs are correlated and pooled one at a time in a loop
      (`ops.fft_correlation.pooled_correlation_energies`), whose gradient
      computes each pair's correlation again rather than storing it: the
      step holds no full-rate tensor, and one pair's FFTs stay in the caches.
      It needs (`check_fusable` says why others cannot) a stride-1 SAME
      convolution without bias (`GaborConv1D`, `SincConv1D`, `NormalizedConv1D`,
      or a plain linear `keras.layers.Conv1D`); a
      `SquaredModulus` or an activation with act(0) = 0 (`ReLU` without
      threshold, `LeakyReLU`), so that the correlations' zeros outside the
      signal are the pooling's zero padding; a pooling of `pooling`.

    Both engines hold the same sub-layers, so weights (and checkpoints) move
    between them unchanged.

    Args:
        conv: the convolution layer, waveforms `[batch, time, 1]` to
            `[batch, time, channels]`.
        activation: the layer applied to the convolution's outputs (e.g.
            `SquaredModulus`).
        pooling: the pooling layer (downsampling in time).
        engine: "fused" or "layers" (see above).
        implementation: how the fused engine correlates: "auto" (one FFT
            for static lengths that fit in a 3200-sample block, overlap-save
            blocks otherwise), "single" or "blocks" (see
            `ops.fft_correlation.correlation_energies`).
        name: layer name.

    Input shape:
        `(batch, time, 1)`.

    Output shape:
        `(batch, frames, channels)`, frames as the pooling gives them, in the
        pooling's compute dtype.

    Example:
        >>> from leaf_keras import convolution, pooling, stages
        >>> bank = Filterbank(convolution.GaborConv1D(80, 401),
        ...                   stages.SquaredModulus(),
        ...                   pooling.GaussianLowpass(401, 160))
        >>> bank(np.zeros((2, 16000, 1), "float32")).shape  # (2, 100, 40)
    """

    def __init__(
        self,
        conv,
        activation,
        pooling,
        engine="fused",
        implementation="auto",
        name="filterbank",
        **kwargs,
    ):
        # The sub-layers choose their own precision (float32 filters and
        # poolings under a mixed policy).
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        self.conv = serialization.deserialize_layer(conv)
        self.activation = serialization.deserialize_layer(activation)
        self.pooling = serialization.deserialize_layer(pooling)
        if engine not in ("fused", "layers"):
            raise ValueError(
                f"Filterbank computes the 'fused' and 'layers' engines, got engine={engine!r}."
            )
        if engine == "fused":
            check_fusable(self.conv, self.activation, self.pooling)
        if implementation not in ("auto", "single", "blocks"):
            raise ValueError(
                f"implementation must be 'auto', 'single' or 'blocks', got {implementation!r}."
            )
        self.engine = engine
        self.implementation = implementation

    def build(self, input_shape):
        # Sub-layers may come built (shared with another stage).
        shape = (None, None) + tuple(input_shape[2:])
        for layer in (self.conv, self.activation, self.pooling):
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)

    @precision.keeps_float64
    def call(self, inputs, lengths=None):
        if lengths is not None:
            return self._call_padded_clips(inputs, lengths)
        if self.engine == "layers":
            return self.pooling(self.activation(self.conv(inputs)))
        signal = ops.cast(inputs[:, :, 0], precision.working_dtype(self))
        time = ops.shape(signal)[1]
        frames, left, length = self.pooling.padded_layout(time)
        # The correlation covers the whole signal (a VALID pooling may leave
        # a tail unread).
        length = (
            max(length, time + left) if isinstance(time, int) else ops.maximum(length, time + left)
        )
        if self._pools_energies_in_groups():
            pooled = fft_correlation.pooled_correlation_energies(
                signal,
                *_filter_pairs(self.conv),
                ops.transpose(self.pooling.pooling_filters(self.activation_channels)),
                self.pooling.strides,
                start=-left,
                length=length,
                implementation=self.implementation,
            )[:, :, :frames]
            return ops.cast(ops.transpose(pooled, (1, 2, 0)), self.pooling.compute_dtype)
        padded = self.padded_activation(signal, start=-left, length=length)
        if self.pooling.padding_value != 0.0:
            # A max pooling pads with -inf instead of zeros.
            positions = ops.arange(ops.shape(padded)[2]) - left
            inside = ops.logical_and(positions >= 0, positions < time)
            padded = ops.where(inside, padded, self.pooling.padding_value)
        pooled = self.pooling.pool_padded_channels_major(padded, frames)
        return ops.cast(ops.transpose(pooled, (1, 2, 0)), self.pooling.compute_dtype)

    def _call_padded_clips(self, inputs, lengths):
        """The frames of each clip of a batch padded at the end, as the clip alone gets them.

        A clip alone of `n` samples is pooled with its own SAME padding: `left(n)` zeros
        before it (between 120 and 200 samples for LEAF's 401-tap, stride-160 pooling,
        depending on `n` modulo the stride) and zeros after its last activation. In a
        padded batch both differ: the batch's `left(time)` shifts every frame, and the
        convolution's outputs just past a clip's end see its last samples. So the
        activations are computed once for the batch, then each row is laid out as the
        pooling would lay out the clip alone: `left(n)` padding values, the clip's `n`
        activations, padding values.
        """
        lengths = ops.cast(lengths, "int32")
        time = ops.shape(inputs)[1]
        frames, _, length = self.pooling.padded_layout(time)
        # The largest left padding of any clip: SAME never pads more than kernel - 1.
        margin = (self.pooling.kernel_size - 1) // 2 if self.pooling.padding == "same" else 0
        if self.engine == "layers":
            activations = self.activation(self.conv(inputs))
            activations = ops.transpose(precision.upcast_half(activations), (2, 0, 1))
            activations = ops.pad(activations, [[0, 0], [0, 0], [margin, 0]])
        else:
            signal = ops.cast(inputs[:, :, 0], precision.working_dtype(self))
            activations = self.padded_activation(signal, start=-margin, length=time + margin)
        # Row b of the pooling's input, position p, is activation p - left(n_b) of clip b.
        lefts = ops.zeros_like(lengths) + ops.cast(self.pooling.padded_layout(lengths)[1], "int32")
        positions = ops.arange(length, dtype="int32")[None, :] - lefts[:, None]
        inside = ops.logical_and(positions >= 0, positions < lengths[:, None])
        indices = ops.clip(positions + margin, 0, ops.shape(activations)[2] - 1)
        indices = ops.broadcast_to(
            indices[None], (ops.shape(activations)[0],) + tuple(ops.shape(indices))
        )
        padded = ops.where(
            inside[None],
            ops.take_along_axis(activations, indices, axis=2),
            ops.cast(self.pooling.padding_value, activations.dtype),
        )
        pooled = self.pooling.pool_padded_channels_major(padded, frames)
        return ops.cast(ops.transpose(pooled, (1, 2, 0)), self.pooling.compute_dtype)

    @property
    def activation_channels(self):
        """Channels of the activation, which the pooling pools one by one."""
        return self.activation.compute_output_shape(
            self.conv.compute_output_shape((None, None, 1))
        )[-1]

    def _pools_energies_in_groups(self):
        """Whether `call` pools the energies group by group
        (`fft_correlation.pooled_correlation_energies`): a squared modulus and a
        linear pooling, whose gradient then recomputes the correlations instead
        of storing them."""
        return isinstance(self.activation, stages.SquaredModulus) and not isinstance(
            self.pooling, pooling.MaxPooling1D
        )

    def padded_activation(self, signal, start, length):
        """`activation(conv(signal))`, channels major `[channels, batch, L]`,
        zero outside the signal, from sample `start` on."""
        even, odd = _filter_pairs(self.conv)
        layout = dict(
            start=start,
            length=length,
            hop_multiple=self.pooling.strides,
            implementation=self.implementation,
        )
        if isinstance(self.activation, stages.SquaredModulus):
            return fft_correlation.correlation_energies(signal, even, odd, **layout)
        real, imag = fft_correlation.correlation_outputs(signal, even, odd, **layout)
        # [pairs, 2, batch, L] -> [channels, batch, L]: 2k, 2k + 1, ...
        # (static channel count: the batch and time axes may be unknown).
        outputs = ops.reshape(
            ops.stack([real, imag], axis=1),
            (2 * real.shape[0], ops.shape(real)[1], ops.shape(real)[2]),
        )
        channels = self.conv.compute_output_shape((None, None, 1))[-1]
        return _elementwise_activation(self.activation, outputs[:channels])

    def compute_output_shape(self, input_shape):
        shape = self.conv.compute_output_shape(input_shape)
        shape = self.activation.compute_output_shape(shape)
        return self.pooling.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update(
            {
                "conv": serialize(self.conv),
                "activation": serialize(self.activation),
                "pooling": serialize(self.pooling),
                "engine": self.engine,
                "implementation": self.implementation,
            }
        )
        return config


def _filter_pairs(conv):
    if isinstance(conv, convolution.ParametricConv1D):
        return conv.filter_pairs()
    return convolution.real_filter_pairs(conv.kernel)


def _elementwise_activation(activation, inputs):
    """The activation's function, in float32 (a mixed policy's `__call__`
    would round the full-rate outputs to half precision; the pooling sums
    them in float32)."""
    if isinstance(activation, keras.layers.LeakyReLU):
        return ops.leaky_relu(inputs, negative_slope=activation.negative_slope)
    return keras.activations.relu(
        inputs, negative_slope=activation.negative_slope, max_value=activation.max_value
    )


def _overrides_call(layer, bases):
    """Whether `layer` subclasses one of `bases` but has its own `call`: the
    fused engine computes the bases' `call`, so such a subclass runs on the
    layers engine, where its `call` runs."""
    return isinstance(layer, bases) and all(type(layer).call is not base.call for base in bases)


def check_fusable(conv, activation, pool):
    """Raises ValueError naming the stage the fused engine cannot compute."""
    for layer, bases in (
        (conv, (convolution.ParametricConv1D, keras.layers.Conv1D)),
        (activation, (stages.SquaredModulus, keras.layers.ReLU, keras.layers.LeakyReLU)),
        (pool, _FUSABLE_POOLINGS),
    ):
        if _overrides_call(layer, bases):
            raise ValueError(
                f"{layer!r} overrides `call`, which the fused filterbank would not run; "
                "use filterbank='layers'."
            )
    if isinstance(conv, convolution.ParametricConv1D):
        conv_ok = conv.strides == 1 and conv.padding == "same" and not conv.use_bias
    elif isinstance(conv, keras.layers.Conv1D):
        conv_ok = (
            tuple(conv.strides) == (1,)
            and conv.padding == "same"
            and tuple(conv.dilation_rate) == (1,)
            and conv.groups == 1
            and not conv.use_bias
            and conv.data_format == "channels_last"
            and conv.activation is keras.activations.linear
        )
    else:
        conv_ok = False
    if not conv_ok:
        raise ValueError(
            "The fused filterbank needs a stride-1 SAME convolution without "
            f"bias or activation, got {conv!r}; use filterbank='layers'."
        )
    channels = conv.compute_output_shape((None, None, 1))[-1]
    if isinstance(activation, stages.SquaredModulus):
        activation_ok = channels % 2 == 0
    elif isinstance(activation, keras.layers.ReLU):
        activation_ok = activation.threshold == 0.0
    else:
        activation_ok = isinstance(activation, keras.layers.LeakyReLU)
    if not activation_ok:
        raise ValueError(
            "The fused filterbank needs a SquaredModulus (of an even channel "
            "count) or an activation with act(0) = 0 (ReLU without threshold, "
            f"LeakyReLU), got {activation!r} after {channels} channels; use "
            "filterbank='layers'."
        )
    if not isinstance(pool, _FUSABLE_POOLINGS):
        raise ValueError(
            "The fused filterbank needs one of the poolings "
            f"{[cls.__name__ for cls in _FUSABLE_POOLINGS]}, got {pool!r}; "
            "use filterbank='layers'."
        )


def is_fusable(conv, activation, pool):
    """Whether the fused engine can compute these stages."""
    try:
        check_fusable(conv, activation, pool)
    except ValueError:
        return False
    return True


def resolve_engine(engine, conv, activation, pool):
    """The engine name for `engine`: "auto" is "fused" where possible."""
    if engine not in ENGINES:
        raise ValueError(f"filterbank must be one of {ENGINES}, got {engine!r}.")
    if engine == "auto":
        return "fused" if is_fusable(conv, activation, pool) else "layers"
    return engine


def make_filterbank(engine, conv, activation, pool):
    """The `Filterbank` of engine `engine` ("auto", "fused" or "layers")."""
    return Filterbank(conv, activation, pool, engine=resolve_engine(engine, conv, activation, pool))
