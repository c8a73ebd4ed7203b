"""The input contract of every frontend: mono float waveforms.

`check_waveforms` is the one validation of a waveform shape and dtype;
`WaveformInput` is the first stage of `Leaf` and its baselines.
"""

import keras
from keras import ops

from leaf_keras.ops import precision

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def check_waveforms(shape, dtype, min_length, layer_name):
    """Raises ValueError unless `shape`/`dtype` describe mono waveforms.

    Args:
        shape: the static shape (entries may be None).
        dtype: the dtype, or None if unknown.
        min_length: minimum number of samples (the filter length).
        layer_name: name used in the messages.
    """
    shape = tuple(shape)
    if len(shape) not in (2, 3):
        raise ValueError(
            f"{layer_name} expects waveforms of shape [batch, time] or "
            f"[batch, time, 1], got shape {shape} (rank {len(shape)})."
        )
    if len(shape) == 3 and shape[2] is not None and shape[2] != 1:
        raise ValueError(
            f"{layer_name} expects mono waveforms [batch, time, 1], got shape "
            f"{shape} with {shape[2]} channels; mix or select one channel."
        )
    if dtype is not None:
        dtype = keras.backend.standardize_dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise ValueError(
                f"{layer_name} expects float waveforms (e.g. float32 in "
                f"[-1, 1]), got dtype {dtype} for shape {shape}; convert "
                "integer PCM with x / 32768."
            )
    if shape[0] == 0:
        raise ValueError(f"{layer_name} got an empty batch, shape {shape}.")
    if shape[1] is not None and shape[1] < min_length:
        raise ValueError(
            f"{layer_name} needs at least {min_length} samples (one window), got shape {shape}."
        )


@keras.saving.register_keras_serializable(package="leaf_keras")
class WaveformInput(keras.layers.Layer):
    """Input stage: checks waveforms and returns them as `[batch, time, 1]`.

    Args:
        min_length: minimum number of samples.
        name: layer name.

    Input shape:
        `(batch, time)` or `(batch, time, 1)`.

    Output shape:
        `(batch, time, 1)`.
    """

    def __init__(self, min_length=1, name="waveform_input", **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        self.min_length = int(min_length)

    def build(self, input_shape):
        check_waveforms(input_shape, None, self.min_length, self.name)

    @precision.keeps_float64
    def call(self, inputs):
        check_waveforms(inputs.shape, inputs.dtype, self.min_length, self.name)
        if len(inputs.shape) == 2:
            inputs = ops.expand_dims(inputs, -1)
        return inputs

    def compute_output_shape(self, input_shape):
        check_waveforms(input_shape, None, self.min_length, self.name)
        return (input_shape[0], input_shape[1], 1)

    def get_config(self):
        config = super().get_config()
        config["min_length"] = self.min_length
        return config
