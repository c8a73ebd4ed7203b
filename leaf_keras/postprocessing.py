"""Compression and normalization of filterbank energies.

`PCENLayer` is the per-channel energy normalization of Wang et al. (2017,
https://arxiv.org/abs/1607.05666) as used by LEAF (Zeghidour et al., ICLR
2021, Section 3.3); its smoother `ExponentialMovingAverage` is a linear
recurrence, evaluated with chunked decay-power matrix products
(`ops.linear_recurrence`) instead of the original's sequential `tf.scan`
(same values, exact gradients).
"""

import functools
import inspect

import keras
from keras import ops

from leaf_keras import serialization
from leaf_keras import utils
from leaf_keras.ops import precision
from leaf_keras.ops import tie_gradients
from leaf_keras.ops.linear_recurrence import linear_recurrence
from leaf_keras.spec_augment import SpecAugment  # leaf-audio's module map


@keras.saving.register_keras_serializable(package="leaf_keras")
class ExponentialMovingAverage(keras.layers.Layer):
    """Exponential moving average over time, per channel or shared.

    `s_t = w x_t + (1 - w) s_{t-1}` with `s_{-1} = initial_state` (by default
    the first frame, so `s_0 = x_0`), `w` the weight "smooth" clipped to
    [0, 1].

    Args:
        coeff_init: initial smoothing coefficient w.
        per_channel: if True, one coefficient per channel (weight shape
            `(channels,)`), else one shared coefficient (shape `(1,)`).
        trainable: whether w is learned.
        name: layer name.

    Input shape:
        `(batch, time, channels)`.

    Output shape:
        Same as the input.
    """

    def __init__(self, coeff_init=0.04, per_channel=False, trainable=False, name="EMA", **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        coeff_init = float(coeff_init)
        if not 0.0 <= coeff_init <= 1.0:
            raise ValueError(f"coeff_init must be in [0, 1], got {coeff_init}.")
        self.coeff_init = coeff_init
        self.per_channel = bool(per_channel)
        self.learn_smooth_coef = bool(trainable)

    def build(self, input_shape):
        utils.check_frames_shape(self, input_shape)
        self.smooth = self.add_weight(
            name="smooth",
            shape=(input_shape[-1],) if self.per_channel else (1,),
            initializer=keras.initializers.Constant(self.coeff_init),
            trainable=self.learn_smooth_coef,
            dtype=precision.working_dtype(self),
            autocast=False,
        )

    @precision.keeps_float64
    def call(self, inputs, initial_state=None):
        inputs = precision.upcast_half(inputs)
        weight = tie_gradients.clip(ops.cast(self.smooth, inputs.dtype), 0.0, 1.0)
        if initial_state is None:
            initial_state = inputs[:, 0, :]
        initial_state = ops.cast(initial_state, inputs.dtype)
        # Fold the initial state into the first input so the recurrence
        # starts from zero: s_0 = w x_0 + (1 - w) s_{-1}.
        driven = weight * inputs
        first = driven[:, :1, :] + (1.0 - weight) * initial_state[:, None, :]
        driven = ops.concatenate([first, driven[:, 1:, :]], axis=1)
        states = linear_recurrence(1.0 - weight, driven)
        return ops.cast(states, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "coeff_init": self.coeff_init,
                "per_channel": self.per_channel,
                "trainable": self.learn_smooth_coef,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class PCENLayer(keras.layers.Layer):
    """Per-Channel Energy Normalization (fixed or learnable).

    `PCEN(x) = (x / (floor + M)^alpha + delta)^(1/root) - delta^(1/root)`,
    M the exponential moving average of x over time (initial state: the
    first frame), `alpha = min(alpha, 1)`, `root = max(root, 1)`.

    Weights: "alpha", "delta", "root" of shape `(channels,)` (trainable if
    `trainable`), and the smoother's "smooth" coefficient. With
    `learn_smooth_coef=True` the smoother is an `ExponentialMovingAverage`
    whose coefficient is always trained (per channel if
    `per_channel_smooth_coef`), as in the original. With
    `learn_smooth_coef=False` the coefficient is fixed (a non-trainable
    per-channel "smooth" weight equal to `smooth_coef`); the original
    implemented that fixed smoother as a SimpleRNN with identity kernels
    scaled by `smooth_coef` and `1 - smooth_coef`, which computes the same
    thing (`leaf_audio_weights` converts those kernels).

    Args:
        alpha: exponent of the smoother in the denominator.
        smooth_coef: smoothing coefficient of the moving average.
        delta: bias added before the root compression.
        root: inverse exponent of the compression (r in the paper).
        floor: offset added to the smoother (avoids division by zero).
        trainable: whether alpha, delta and root are learned.
        learn_smooth_coef: whether the smoothing coefficient is learned.
        per_channel_smooth_coef: one learned coefficient per channel.
        name: layer name.

    Input shape:
        `(batch, time, channels)`, non-negative energies.

    Output shape:
        Same as the input.

    Example:
        >>> pcen = PCENLayer(alpha=0.96, smooth_coef=0.04, delta=2.0,
        ...                  floor=1e-12, trainable=True,
        ...                  learn_smooth_coef=True,
        ...                  per_channel_smooth_coef=True)
        >>> pcen(np.ones((2, 100, 40), "float32")).shape  # (2, 100, 40)
    """

    def __init__(
        self,
        alpha=0.96,
        smooth_coef=0.04,
        delta=2.0,
        root=2.0,
        floor=1e-6,
        trainable=False,
        learn_smooth_coef=False,
        per_channel_smooth_coef=False,
        name="PCEN",
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        if floor <= 0:
            raise ValueError(f"floor must be positive, got {floor}.")
        self.alpha_init = float(alpha)
        self.smooth_coef = float(smooth_coef)
        self.delta_init = float(delta)
        self.root_init = float(root)
        self.floor = float(floor)
        self.learn_alpha_delta_root = bool(trainable)
        self.learn_smooth_coef = bool(learn_smooth_coef)
        self.per_channel_smooth_coef = bool(per_channel_smooth_coef)
        if self.learn_smooth_coef:
            self.ema = ExponentialMovingAverage(
                coeff_init=self.smooth_coef,
                per_channel=self.per_channel_smooth_coef,
                trainable=True,
            )
        else:
            self.ema = ExponentialMovingAverage(
                coeff_init=self.smooth_coef, per_channel=True, trainable=False
            )

    def build(self, input_shape):
        utils.check_frames_shape(self, input_shape)
        channels = input_shape[-1]

        def constant_weight(weight_name, value):
            return self.add_weight(
                name=weight_name,
                shape=(channels,),
                initializer=keras.initializers.Constant(value),
                trainable=self.learn_alpha_delta_root,
                dtype=precision.working_dtype(self),
                autocast=False,
            )

        self.alpha = constant_weight("alpha", self.alpha_init)
        self.delta = constant_weight("delta", self.delta_init)
        self.root = constant_weight("root", self.root_init)
        self.ema.build(input_shape)

    @precision.keeps_float64
    def call(self, inputs, initial_state=None):
        inputs = precision.upcast_half(inputs)
        smoother = ops.cast(self.ema(inputs, initial_state=initial_state), inputs.dtype)
        return ops.cast(self.compress(inputs, smoother), self.compute_dtype)

    def compress(self, inputs, smoother):
        """PCEN of `inputs` given their smoothed energies `smoother` (same shape and
        dtype): the gain `(floor + smoother)^-alpha`, then the root compression. The
        streaming frontends call it with a smoother carried across chunks."""
        alpha = tie_gradients.minimum(ops.cast(self.alpha, inputs.dtype), 1.0)
        root = tie_gradients.maximum(ops.cast(self.root, inputs.dtype), 1.0)
        delta = ops.cast(self.delta, inputs.dtype)
        # The powers are written as exp(log) so that their gradients reuse
        # the forward values (the gradients of `ops.power` evaluate two more
        # powers and a log per element: twice the cost of the whole PCEN).
        one_over_root = 1.0 / root
        gain = ops.exp(-alpha * ops.log(self.floor + smoother))
        return ops.exp(ops.log(inputs * gain + delta) * one_over_root) - ops.exp(
            ops.log(delta) * one_over_root
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha": self.alpha_init,
                "smooth_coef": self.smooth_coef,
                "delta": self.delta_init,
                "root": self.root_init,
                "floor": self.floor,
                "trainable": self.learn_alpha_delta_root,
                "learn_smooth_coef": self.learn_smooth_coef,
                "per_channel_smooth_coef": self.per_channel_smooth_coef,
            }
        )
        return config


def log_compression(inputs, log_offset=1e-5):
    """`log(inputs + log_offset)`: leaf-audio's `frontend.log_compression` function.

    Code written for the original passes it, or
    ``functools.partial(log_compression, log_offset=...)``, as a frontend's
    ``compression_fn``; the frontends store it as the equivalent `LogCompression`
    layer (see `compression_layer`), so models still save to ``.keras`` files.

    Args:
        inputs: non-negative energies.
        log_offset: offset added before the logarithm.

    Returns:
        The compressed tensor, same shape as `inputs`.
    """
    if isinstance(inputs, _LogOffsetQuery):
        return log_offset
    return ops.log(inputs + log_offset)


class _LogOffsetQuery:
    """Asks a decorated `log_compression` which offset its call would use.

    gin's ``@log_compression`` is a wrapper that applies the
    ``log_compression.log_offset`` binding only when it is called, so the offset it
    stands for is known only by calling it.
    """


def compression_layer(compression_fn):
    """The layer a frontend stores for its ``compression_fn`` argument.

    Args:
        compression_fn: a Keras layer, a serialized layer config, None, or
            `log_compression` itself, a `functools.partial` of it or a wrapper of it
            (e.g. gin's ``@log_compression``).

    Returns:
        The layer (a `LogCompression` for the `log_compression` forms), or None.

    Raises:
        ValueError: for any other value; a plain function cannot be saved in a
            ``.keras`` file that loads with ``safe_mode``.
    """
    compression_fn = serialization.deserialize_layer(compression_fn)
    if compression_fn is None or isinstance(compression_fn, keras.layers.Layer):
        return compression_fn
    if callable(compression_fn) and _wraps_log_compression(compression_fn):
        log_offset = compression_fn(_LogOffsetQuery())
        return LogCompression(log_offset=log_offset)
    raise ValueError(
        "compression_fn must be a keras layer (e.g. PCENLayer or LogCompression), "
        f"log_compression (or a functools.partial of it) or None, got {compression_fn!r}."
    )


def _wraps_log_compression(fn):
    while isinstance(fn, functools.partial):
        if fn.args:  # A partial binding `inputs` is not a compression function.
            return False
        fn = fn.func
    return inspect.unwrap(fn) is log_compression


@keras.saving.register_keras_serializable(package="leaf_keras")
class LogCompression(keras.layers.Layer):
    """`log(x + log_offset)`, the compression of mel filterbanks.

    Args:
        log_offset: offset added before the logarithm.
        name: layer name.

    Input shape:
        Any; non-negative energies.

    Output shape:
        Same as the input.
    """

    def __init__(self, log_offset=1e-5, name="log_compression", **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        if log_offset <= 0:
            raise ValueError(f"log_offset must be positive, got {log_offset}.")
        self.log_offset = float(log_offset)

    @precision.keeps_float64
    def call(self, inputs):
        inputs = precision.upcast_half(inputs)
        return ops.cast(ops.log(inputs + self.log_offset), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["log_offset"] = self.log_offset
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class InstanceNormalization(keras.layers.Layer):
    """Normalizes each channel of each example over time.

    `(x - mean_t(x)) / sqrt(var_t(x) + epsilon) * gamma + beta`, with
    per-channel "gamma" and "beta": what `tfa.layers.InstanceNormalization(
    axis=2)` computes on `[batch, time, channels]`.

    Args:
        epsilon: added to the variance.
        center: whether to learn the offset beta.
        scale: whether to learn the scale gamma.
        beta_initializer: initializer of beta.
        gamma_initializer: initializer of gamma.
        name: layer name.

    Input shape:
        `(batch, time, channels)`, and optionally a boolean `mask` `(batch, time)`
        marking each clip's frames in a padded batch: the moments are then those of
        the marked frames only.

    Output shape:
        Same as the input.
    """

    def __init__(
        self,
        epsilon=1e-6,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        name="tfbanks_instancenorm",
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        # The output has the input's frames, so a frames mask passes through.
        self.supports_masking = True

    def build(self, input_shape):
        utils.check_frames_shape(self, input_shape)
        channels = input_shape[-1]
        self.gamma = (
            self.add_weight(
                name="gamma",
                shape=(channels,),
                initializer=self.gamma_initializer,
                dtype=precision.working_dtype(self),
                autocast=False,
            )
            if self.scale
            else None
        )
        self.beta = (
            self.add_weight(
                name="beta",
                shape=(channels,),
                initializer=self.beta_initializer,
                dtype=precision.working_dtype(self),
                autocast=False,
            )
            if self.center
            else None
        )

    @precision.keeps_float64
    def call(self, inputs, mask=None):
        inputs = precision.upcast_half(inputs)
        if mask is None:
            mean = ops.mean(inputs, axis=1, keepdims=True)
            variance = ops.mean(ops.square(inputs - mean), axis=1, keepdims=True)
        else:
            # Padded clips: the moments of each clip's own frames (`mask`, (batch, time)).
            weights = ops.cast(mask, inputs.dtype)[:, :, None]
            count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
            mean = ops.sum(inputs * weights, axis=1, keepdims=True) / count
            variance = ops.sum(ops.square(inputs - mean) * weights, axis=1, keepdims=True) / count
        outputs = (inputs - mean) * ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            outputs = outputs * ops.cast(self.gamma, outputs.dtype)
        if self.beta is not None:
            outputs = outputs + ops.cast(self.beta, outputs.dtype)
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": keras.initializers.serialize(self.beta_initializer),
                "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
            }
        )
        return config


def leaf_pcen():
    """The PCEN of LEAF and mel-PCEN: learnable, per-channel smoothing.

    alpha 0.96, smoothing 0.04 learned per channel, delta 2, root 2, floor
    1e-12, alpha / delta / root trainable (the original's frontend default).
    """
    return PCENLayer(
        alpha=0.96,
        smooth_coef=0.04,
        delta=2.0,
        floor=1e-12,
        trainable=True,
        learn_smooth_coef=True,
        per_channel_smooth_coef=True,
    )


__all__ = [
    "ExponentialMovingAverage",
    "InstanceNormalization",
    "LogCompression",
    "PCENLayer",
    "SpecAugment",
    "leaf_pcen",
]
