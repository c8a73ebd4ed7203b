"""Compression and normalization of filterbank energies.

`PCENLayer` is the per-channel energy normalization of Wang et al. (2017,
https://arxiv.org/abs/1607.05666) as used by LEAF (Zeghidour et al., ICLR
2021, Section 3.3); its smoother `ExponentialMovingAverage` is a linear
recurrence, evaluated here with chunked decay-power matrix products instead
of the original's sequential `tf.scan` (same values, exact gradients).
"""

import keras
from keras import ops

from leaf_keras import impulse_responses
from leaf_keras.spec_augment import SpecAugment  # re-exported, see __all__

_HALF_DTYPES = ("float16", "bfloat16")


def _float32(inputs):
    inputs = ops.convert_to_tensor(inputs)
    if keras.backend.standardize_dtype(inputs.dtype) in _HALF_DTYPES:
        inputs = ops.cast(inputs, "float32")
    return inputs


def _check_rank3(layer, input_shape):
    if len(input_shape) != 3 or input_shape[-1] is None:
        raise ValueError(
            f"{layer.__class__.__name__} expects inputs [batch, time, "
            f"channels] with a known channel count, got {tuple(input_shape)}.")


def _decay_powers(decay, exponents):
    """`decay ** exponents` for exponents >= 0, 0 where exponents < 0.

    Exponents are whole numbers (as floats). The gradient stays finite for
    `decay == 0`: the power is only taken with exponents >= 1.
    """
    positive = ops.power(decay, ops.maximum(exponents, 1.0))
    powers = ops.where(exponents > 0, positive, ops.ones_like(positive))
    return ops.where(exponents >= 0, powers, ops.zeros_like(powers))


def _chunked_recurrence(decay, inputs, chunk_size):
    """States of the recurrence over the last axis, channels first.

    Args:
        decay: `(channels,)`.
        inputs: `[channels, rows, time]`.
        chunk_size: frames per chunk.

    Returns:
        `[channels, rows, time]`.
    """
    channels = inputs.shape[0]
    rows, time = ops.shape(inputs)[1], ops.shape(inputs)[2]
    num_chunks = (time + chunk_size - 1) // chunk_size
    padded = ops.pad(inputs,
                     [[0, 0], [0, 0], [0, num_chunks * chunk_size - time]])
    # Channels lead, so both products are plain batched matmuls over
    # channels (no transposes of the data inside them).
    chunks = ops.reshape(padded, (channels, rows * num_chunks, chunk_size))
    steps = ops.arange(chunk_size, dtype=inputs.dtype)
    lags = steps[None, :] - steps[:, None]  # [u, t]: t - u
    within = _decay_powers(decay[:, None, None], lags[None])  # [C, u, t]
    local = ops.reshape(ops.matmul(chunks, within),
                        (channels, rows, num_chunks, chunk_size))
    # State entering chunk j: sum over i < j of D^(j - 1 - i) * end_i, with
    # D = decay^chunk_size and end_i the last local state of chunk i.
    ends = local[:, :, :, -1]  # [C, rows, chunks]
    chunk_index = ops.arange(num_chunks, dtype=inputs.dtype)
    chunk_lags = chunk_index[None, :] - chunk_index[:, None] - 1.0  # [i, j]
    across = _decay_powers(decay[:, None, None],
                           chunk_size * chunk_lags[None])
    across = ops.where(chunk_lags[None] >= 0, across, ops.zeros_like(across))
    carried = ops.matmul(ends, across)  # [C, rows, chunks]
    growth = _decay_powers(decay[:, None], steps[None, :] + 1.0)  # [C, t]
    states = local + carried[..., None] * growth[:, None, None, :]
    states = ops.reshape(states, (channels, rows, num_chunks * chunk_size))
    return states[:, :, :time]


def linear_recurrence(decay, inputs, chunk_size=64):
    """All states of `s_t = decay * s_{t-1} + inputs_t`, `s_{-1} = 0`.

    A time-invariant first-order recurrence (per channel) evaluated without
    a sequential loop over time: inside chunks of `chunk_size` frames the
    states are one matrix product with the decay powers `decay^(t - u)`,
    and the states carried between chunks are a second such product over
    chunks. Exact (no truncation), works with an unknown time length.

    The gradient is written out rather than differentiated through the
    decay-power matrices: the adjoint of a linear recurrence is the same
    recurrence run backwards in time, `l_t = g_t + decay * l_{t+1}`, which
    gives `d inputs_t = l_t` and `d decay = sum_t l_t s_{t-1}`.

    Args:
        decay: float tensor `(channels,)` or `(1,)`, values in [0, 1].
        inputs: float tensor `[batch, time, channels]`.
        chunk_size: frames per chunk.

    Returns:
        A tensor `[batch, time, channels]`.
    """
    channels = inputs.shape[-1]
    decay = ops.broadcast_to(ops.cast(decay, inputs.dtype), (channels,))

    @ops.custom_gradient
    def recurrence(decay, inputs_channels_first):
        states = _chunked_recurrence(decay, inputs_channels_first, chunk_size)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            adjoint = ops.flip(_chunked_recurrence(
                decay, ops.flip(upstream, axis=2), chunk_size), axis=2)
            previous = ops.pad(states[:, :, :-1], [[0, 0], [0, 0], [1, 0]])
            return ops.sum(adjoint * previous, axis=(1, 2)), adjoint

        return states, grad

    states = recurrence(decay, ops.transpose(inputs, (2, 0, 1)))
    return ops.transpose(states, (1, 2, 0))


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

    def __init__(self, coeff_init=0.04, per_channel=False, trainable=False,
                 name="EMA", **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        coeff_init = float(coeff_init)
        if not 0.0 <= coeff_init <= 1.0:
            raise ValueError(f"coeff_init must be in [0, 1], got {coeff_init}.")
        self.coeff_init = coeff_init
        self.per_channel = bool(per_channel)
        self.learn_coeff = bool(trainable)

    def build(self, input_shape):
        _check_rank3(self, input_shape)
        self.smooth = self.add_weight(
            name="smooth",
            shape=(input_shape[-1],) if self.per_channel else (1,),
            initializer=keras.initializers.Constant(self.coeff_init),
            trainable=self.learn_coeff, dtype="float32", autocast=False)

    def call(self, inputs, initial_state=None):
        inputs = _float32(inputs)
        weight = impulse_responses.clip(ops.cast(self.smooth, inputs.dtype),
                                        0.0, 1.0)
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
        config.update({"coeff_init": self.coeff_init,
                       "per_channel": self.per_channel,
                       "trainable": self.learn_coeff})
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

    def __init__(self, alpha=0.96, smooth_coef=0.04, delta=2.0, root=2.0,
                 floor=1e-6, trainable=False, learn_smooth_coef=False,
                 per_channel_smooth_coef=False, name="PCEN", **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        if floor <= 0:
            raise ValueError(f"floor must be positive, got {floor}.")
        self.alpha_init = float(alpha)
        self.smooth_coef = float(smooth_coef)
        self.delta_init = float(delta)
        self.root_init = float(root)
        self.floor = float(floor)
        self.learn_params = bool(trainable)
        self.learn_smooth_coef = bool(learn_smooth_coef)
        self.per_channel_smooth_coef = bool(per_channel_smooth_coef)
        if self.learn_smooth_coef:
            self.ema = ExponentialMovingAverage(
                coeff_init=self.smooth_coef,
                per_channel=self.per_channel_smooth_coef, trainable=True)
        else:
            self.ema = ExponentialMovingAverage(
                coeff_init=self.smooth_coef, per_channel=True, trainable=False)

    def build(self, input_shape):
        _check_rank3(self, input_shape)
        channels = input_shape[-1]

        def constant_weight(weight_name, value):
            return self.add_weight(
                name=weight_name, shape=(channels,),
                initializer=keras.initializers.Constant(value),
                trainable=self.learn_params, dtype="float32", autocast=False)

        self.alpha = constant_weight("alpha", self.alpha_init)
        self.delta = constant_weight("delta", self.delta_init)
        self.root = constant_weight("root", self.root_init)
        self.ema.build(input_shape)

    def call(self, inputs):
        inputs = _float32(inputs)
        alpha = impulse_responses.minimum(ops.cast(self.alpha, inputs.dtype),
                                         1.0)
        root = impulse_responses.maximum(ops.cast(self.root, inputs.dtype),
                                        1.0)
        delta = ops.cast(self.delta, inputs.dtype)
        smoother = ops.cast(self.ema(inputs), inputs.dtype)
        # The powers are written as exp(log) so that their gradients reuse
        # the forward values (the gradients of `ops.power` evaluate two more
        # powers and a log per element: twice the cost of the whole PCEN).
        one_over_root = 1.0 / root
        gain = ops.exp(-alpha * ops.log(self.floor + smoother))
        outputs = (ops.exp(ops.log(inputs * gain + delta) * one_over_root) -
                   ops.exp(ops.log(delta) * one_over_root))
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({
            "alpha": self.alpha_init,
            "smooth_coef": self.smooth_coef,
            "delta": self.delta_init,
            "root": self.root_init,
            "floor": self.floor,
            "trainable": self.learn_params,
            "learn_smooth_coef": self.learn_smooth_coef,
            "per_channel_smooth_coef": self.per_channel_smooth_coef,
        })
        return config


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

    def call(self, inputs):
        inputs = _float32(inputs)
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
        `(batch, time, channels)`.

    Output shape:
        Same as the input.
    """

    def __init__(self, epsilon=1e-6, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 name="tfbanks_instancenorm", **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)

    def build(self, input_shape):
        _check_rank3(self, input_shape)
        channels = input_shape[-1]
        self.gamma = (self.add_weight(name="gamma", shape=(channels,),
                                      initializer=self.gamma_initializer,
                                      dtype="float32", autocast=False)
                      if self.scale else None)
        self.beta = (self.add_weight(name="beta", shape=(channels,),
                                     initializer=self.beta_initializer,
                                     dtype="float32", autocast=False)
                     if self.center else None)

    def call(self, inputs):
        inputs = _float32(inputs)
        mean = ops.mean(inputs, axis=1, keepdims=True)
        variance = ops.mean(ops.square(inputs - mean), axis=1, keepdims=True)
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
        config.update({
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": keras.initializers.serialize(
                self.beta_initializer),
            "gamma_initializer": keras.initializers.serialize(
                self.gamma_initializer),
        })
        return config


__all__ = [
    "ExponentialMovingAverage", "InstanceNormalization", "LogCompression",
    "PCENLayer", "SpecAugment", "linear_recurrence",
]
