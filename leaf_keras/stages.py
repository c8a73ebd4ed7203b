"""Small stages of the filterbank frontends: squared modulus and energy floor.

Reference: Zeghidour et al., "LEAF: A Learnable Frontend for Audio
Classification", ICLR 2021, Section 3 (the squared modulus of the complex
Gabor outputs, and the floor before compression).
"""

import keras
from keras import ops

from leaf_keras.ops import precision
from leaf_keras.ops import tie_gradients


@keras.saving.register_keras_serializable(package="leaf_keras")
class SquaredModulus(keras.layers.Layer):
    """Squared modulus of complex channels stored as (real, imag) pairs.

    Input channels 2k and 2k + 1 are the real and imaginary parts of complex
    channel k; output channel k is `real^2 + imag^2`.

    Input shape:
        `(batch, time, 2 * channels)`.

    Output shape:
        `(batch, time, channels)`.
    """

    def __init__(self, name="squared_modulus", **kwargs):
        super().__init__(name=name, **kwargs)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None or (input_shape[-1] % 2):
            raise ValueError(
                "SquaredModulus expects [batch, time, 2 * channels] with "
                f"(real, imag) pairs, got shape {tuple(input_shape)}."
            )

    @precision.keeps_float64
    def call(self, inputs):
        channels = inputs.shape[-1] // 2
        pairs = ops.reshape(inputs, (ops.shape(inputs)[0], ops.shape(inputs)[1], channels, 2))
        return ops.sum(ops.square(pairs), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[2] // 2)


@keras.saving.register_keras_serializable(package="leaf_keras")
class EnergyFloor(keras.layers.Layer):
    """`max(x, floor)`: keeps pooled energies away from zero before compression.

    Args:
        floor: the minimum value.
        name: layer name.
    """

    def __init__(self, floor=1e-5, name="energy_floor", **kwargs):
        super().__init__(name=name, **kwargs)
        self.floor = float(floor)

    @precision.keeps_float64
    def call(self, inputs):
        return tie_gradients.maximum(inputs, self.floor)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["floor"] = self.floor
        return config
