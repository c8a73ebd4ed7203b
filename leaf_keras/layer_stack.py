"""Shared base of the encoder blocks: a fixed list of layers, and argument checks.

`models` and `pann` build their blocks on `LayerStack`; the checks raise
ValueError naming the block, the argument and the value received.
"""

import keras

PACKAGE = "leaf_keras"


def check_positive_int(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{owner}: `{name}` must be a positive integer, got {value!r}.")


def check_filters(owner, filters):
    """`filters` (a non-empty list of positive integers, one per block) as a list."""
    if not isinstance(filters, (list, tuple)) or not filters:
        raise ValueError(
            f"{owner}: `filters` must be a non-empty list of integers, got {filters!r}."
        )
    for value in filters:
        check_positive_int(owner, "filters", value)
    return [int(value) for value in filters]


def check_rate(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: `{name}` must be a float in [0, 1), got {value!r}.")


def check_pair(owner, name, value):
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value)
    ):
        raise ValueError(f"{owner}: `{name}` must be two positive integers, got {value!r}.")
    return tuple(value)


def check_rank(owner, input_shape, ranks, expected):
    if len(input_shape) not in ranks:
        raise ValueError(
            f"{owner} expects inputs of shape {expected}, got shape {tuple(input_shape)}."
        )


class LayerStack(keras.layers.Layer):
    """Base of the blocks below: a fixed list of layers applied in order.

    Subclasses fill ``self.stack`` in ``__init__``; building, calling (with the
    ``training`` flag forwarded to every layer) and shape inference are chained here.
    """

    expected_ranks = (4,)
    expected_shape = "(batch, frames, bins, channels)"

    def _check_input_shape(self, input_shape):
        check_rank(type(self).__name__, input_shape, self.expected_ranks, self.expected_shape)

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        shape = tuple(input_shape)
        for layer in self.stack:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, inputs, training=None):
        outputs = inputs
        for layer in self.stack:
            outputs = layer(outputs, training=training)
        return outputs

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.stack:
            shape = layer.compute_output_shape(shape)
        return shape
