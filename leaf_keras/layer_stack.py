"""Shared base of the encoder blocks: a fixed list of layers, and argument checks.

`models` and `pann` build their blocks on `LayerStack`; the checks raise
ValueError naming the block, the argument and the value received.
"""

import keras
from keras import ops

from leaf_keras import masking

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

    def call(self, inputs, training=None, lengths=None):
        """Applies the stack; with `lengths` (valid frames per clip, int `(batch,)`),
        each clip's frames are those of the clip alone (`leaf_keras.masking`)."""
        if lengths is None:
            outputs = inputs
            for layer in self.stack:
                outputs = layer(outputs, training=training)
            return outputs
        return self._masked_call(inputs, training, lengths)[0]

    def _masked_call(self, inputs, training, lengths):
        """(outputs, their valid lengths or None once the frame axis is pooled away)."""
        outputs = inputs
        for layer in self.stack:
            if lengths is None:
                outputs = layer(outputs, training=training)
                continue
            # What the layer's own SAME padding would read past a clip's end: zeros.
            outputs = masking.zero_padding_frames(outputs, lengths)
            if isinstance(layer, LayerStack):
                outputs, lengths = layer._masked_call(outputs, training, lengths)
            elif isinstance(layer, masking.GLOBAL_MAX_POOLINGS + masking.GLOBAL_AVERAGE_POOLINGS):
                mode = "max" if isinstance(layer, masking.GLOBAL_MAX_POOLINGS) else "avg"
                outputs, lengths = masking.global_pooling(outputs, lengths, mode), None
            elif isinstance(layer, keras.layers.BatchNormalization):
                mask = masking.sequence_mask(lengths, ops.shape(outputs)[1])
                mask = ops.broadcast_to(
                    ops.reshape(mask, tuple(ops.shape(mask)) + (1,) * (len(outputs.shape) - 3)),
                    ops.shape(outputs)[:-1],
                )
                outputs = layer(outputs, training=training, mask=mask)
            else:
                new_lengths = masking.output_lengths(layer, lengths)
                outputs, lengths = layer(outputs, training=training), new_lengths
        return outputs, lengths

    def compute_mask(self, inputs, previous_mask):
        # Padded frames reach a stack as `lengths` (see `call`), not as a Keras mask,
        # which would not follow its poolings: no mask leaves it.
        return None

    def output_lengths(self, lengths):
        """Valid frames of the output for `lengths` valid input frames (None if pooled)."""
        for layer in self.stack:
            if lengths is None:
                break
            if isinstance(layer, LayerStack):
                lengths = layer.output_lengths(lengths)
            elif isinstance(layer, masking.GLOBAL_MAX_POOLINGS + masking.GLOBAL_AVERAGE_POOLINGS):
                lengths = None
            else:
                lengths = masking.output_lengths(layer, lengths)
        return lengths

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.stack:
            shape = layer.compute_output_shape(shape)
        return shape
