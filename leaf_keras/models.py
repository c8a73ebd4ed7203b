"""Audio classifiers: a frontend, a convolutional encoder, global pooling and a linear head.

Keras 3 versions of the architectures of google-research/leaf-audio (Zeghidour et al.,
"LEAF: A Learnable Frontend for Audio Classification", ICLR 2021,
https://arxiv.org/abs/2101.08596): the ``AudioClassifier`` wrapper, the small ``ConvNet``
of the example configs, the EfficientNet-B0 encoder of the paper, the ``SmallConvNet`` of
the LEAF Speech Commands reproduction, and CNN14/WaveGram from PANNs (Kong et al., "PANNs:
Large-Scale Pretrained Audio Neural Networks for Audio Pattern Recognition", 2020,
https://arxiv.org/abs/1912.10211). Everything uses ``keras.ops`` only and is serializable
with ``model.save("model.keras")`` / ``keras.saving.load_model``.

Encoders take time-frequency inputs of shape ``(batch, frames, bins, channels)`` (the
frontend output with a trailing channel axis) and keep a ``None`` frame axis, or pool it
away (``SmallConvNet``). The PANN encoders live in ``pann`` and are importable from here;
the reproduction's Transformer encoder lives in ``transformer``.
"""

import keras
from keras import ops

from leaf_keras import band_limited
from leaf_keras import layer_stack
from leaf_keras import masking
from leaf_keras.pann import PANN  # noqa: F401
from leaf_keras.pann import PANNConvBlock  # noqa: F401
from leaf_keras.pann import PANNWavBlock  # noqa: F401
from leaf_keras.pann import WaveGram  # noqa: F401


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class ConvBlock(layer_stack.LayerStack):
    """A separable convolutional block: a 3x1 (time) then a 1x3 (frequency) convolution.

    Each convolution ("same" padding) is followed by the activation, optional batch
    normalization and optional dropout, in that order as in the original; an optional
    2x2 max pooling ("valid" padding) ends the block.

    Args:
        filters: Number of output channels of both convolutions.
        activation: Activation name or callable applied after each convolution.
        use_batch_norm: Whether to add batch normalization after each activation.
        dropout: Dropout rate after each normalization (0 disables it).
        max_pooling: Whether to end with a 2x2 max pooling.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        ``(batch, frames, bins, channels)``.

    Output shape:
        ``(batch, frames', bins', filters)`` with ``frames' = floor(frames / 2)`` and
        ``bins' = floor(bins / 2)`` if ``max_pooling`` else unchanged.

    Example:

    >>> ConvBlock(8)(keras.ops.ones((2, 10, 6, 1))).shape
    (2, 5, 3, 8)
    """

    def __init__(
        self,
        filters,
        activation="relu",
        use_batch_norm=True,
        dropout=0.0,
        max_pooling=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        layer_stack.check_positive_int("ConvBlock", "filters", filters)
        layer_stack.check_rate("ConvBlock", "dropout", dropout)
        self.filters = filters
        self.activation = keras.activations.get(activation)
        self.use_batch_norm = bool(use_batch_norm)
        self.dropout = float(dropout)
        self.max_pooling = bool(max_pooling)
        self.stack = []
        for kernel_size in ((3, 1), (1, 3)):
            self.stack.append(keras.layers.Conv2D(filters, kernel_size, padding="same"))
            self.stack.append(keras.layers.Activation(self.activation))
            if self.use_batch_norm:
                self.stack.append(keras.layers.BatchNormalization())
            if self.dropout > 0.0:
                self.stack.append(keras.layers.Dropout(self.dropout))
        if self.max_pooling:
            self.stack.append(keras.layers.MaxPooling2D(pool_size=(2, 2)))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "activation": keras.activations.serialize(self.activation),
                "use_batch_norm": self.use_batch_norm,
                "dropout": self.dropout,
                "max_pooling": self.max_pooling,
            }
        )
        return config


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class ConvNet(layer_stack.LayerStack):
    """The convolutional encoder of the LEAF example configs: a stack of `ConvBlock`s.

    Block ``i`` max-pools when ``i == 0`` or ``i`` is odd, as in the original (so the
    default six blocks pool four times, dividing frames and bins by 16).

    Args:
        filters: Number of filters of each block (one block per entry). The default is
            the original configuration ``[64, 128, 256, 256, 512, 512]``.
        activation: Activation of every block.
        use_batch_norm: Whether blocks use batch normalization.
        dropout: Dropout rate of every block; the original configuration uses 0.1.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        ``(batch, frames, bins, channels)``; needs at least ``2 ** pools`` frames and bins.

    Output shape:
        ``(batch, frames', bins', filters[-1])``.

    Example:

    >>> ConvNet([8, 16, 16])(keras.ops.ones((2, 16, 12, 1))).shape
    (2, 4, 3, 16)
    """

    def __init__(
        self,
        filters=(64, 128, 256, 256, 512, 512),
        activation="relu",
        use_batch_norm=True,
        dropout=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        filters = layer_stack.check_filters("ConvNet", filters)
        layer_stack.check_rate("ConvNet", "dropout", dropout)
        self.filters = filters
        self.activation = keras.activations.get(activation)
        self.use_batch_norm = bool(use_batch_norm)
        self.dropout = float(dropout)
        self.stack = [
            ConvBlock(
                depth,
                activation=self.activation,
                use_batch_norm=self.use_batch_norm,
                dropout=self.dropout,
                max_pooling=(index == 0 or index % 2 == 1),
            )
            for index, depth in enumerate(self.filters)
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": list(self.filters),
                "activation": keras.activations.serialize(self.activation),
                "use_batch_norm": self.use_batch_norm,
                "dropout": self.dropout,
            }
        )
        return config


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class SmallConvNet(layer_stack.LayerStack):
    """The small CNN of the LEAF Speech Commands reproduction, pooled to one embedding.

    Three blocks of a 3x3 convolution ("same" padding, ReLU) and a 2x2 max pooling
    ("valid" padding), with 32, 64 and 128 filters; then a global pooling over frames and
    bins, a dense layer of 420 units with ReLU, and dropout 0.18. The reproduction
    flattened the last feature map of its fixed 1-second clips into the dense layer;
    that needs a fixed number of frames, so here the map is pooled over frames and bins
    first (global max pooling by default), which keeps the frame axis ``None`` and
    accepts clips of any length. The encoder therefore returns the embedding itself,
    ``(batch, dense_units)``: `AudioClassifier` feeds it to its head as it is and
    ignores its own ``pooling``.

    The name says what it is next to `ConvNet`, the deeper (six separable blocks),
    batch-normalized CNN of the original leaf-audio configs that `gin/common.gin`
    calls "the small ConvNet".

    Args:
        filters: Number of filters of each conv/pool block (one block per entry); the
            reproduction's ``[32, 64, 128]`` by default.
        dense_units: Units of the dense layer after the global pooling (420).
        dropout: Dropout rate after the dense layer (0.18; 0 disables it).
        pooling: Global pooling before the dense layer: ``"max"`` or ``"avg"``.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        ``(batch, frames, bins, channels)``; needs at least ``2 ** len(filters)`` frames
        and bins (each "valid" 2x2 pooling halves them, rounding down).

    Output shape:
        ``(batch, dense_units)``.

    Example:

    >>> SmallConvNet([4, 8], dense_units=6)(keras.ops.ones((2, 10, 8, 1))).shape
    (2, 6)
    """

    def __init__(
        self,
        filters=(32, 64, 128),
        dense_units=420,
        dropout=0.18,
        pooling="max",
        **kwargs,
    ):
        super().__init__(**kwargs)
        filters = layer_stack.check_filters("SmallConvNet", filters)
        layer_stack.check_positive_int("SmallConvNet", "dense_units", dense_units)
        layer_stack.check_rate("SmallConvNet", "dropout", dropout)
        if pooling not in ("max", "avg"):
            raise ValueError(f"SmallConvNet: `pooling` must be 'max' or 'avg', got {pooling!r}.")
        self.filters = filters
        self.dense_units = dense_units
        self.dropout = float(dropout)
        self.pooling = pooling
        self.stack = []
        for depth in self.filters:
            self.stack.append(keras.layers.Conv2D(depth, (3, 3), padding="same", activation="relu"))
            self.stack.append(keras.layers.MaxPooling2D(pool_size=(2, 2)))
        if pooling == "max":
            self.stack.append(keras.layers.GlobalMaxPooling2D())
        else:
            self.stack.append(keras.layers.GlobalAveragePooling2D())
        self.stack.append(keras.layers.Dense(dense_units, activation="relu"))
        if self.dropout > 0.0:
            self.stack.append(keras.layers.Dropout(self.dropout))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": list(self.filters),
                "dense_units": self.dense_units,
                "dropout": self.dropout,
                "pooling": self.pooling,
            }
        )
        return config


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class EfficientNetB0Encoder(keras.layers.Layer):
    """EfficientNet-B0 (without its classification top) as a spectrogram encoder.

    The encoder of the LEAF paper, built from ``keras.applications.EfficientNetB0(
    include_top=False, weights=None)`` with these changes for audio features:

    - any number of input channels (1 for a single time-frequency map) and a ``None``
      frames axis;
    - the ImageNet input preprocessing (``Rescaling(1 / 255)`` and the un-adapted
      ``Normalization``) is removed, features enter the stem convolution as they are;
    - frames and bins shorter than ``min_size`` (32, EfficientNet's minimum: its five
      stride-2 stages each halve the size, rounding down) are zero-padded at the end up
      to it, so very short clips and few-bin features also work on every backend.

    Args:
        min_size: Frames and bins below this are zero-padded up to it; 0 disables the
            padding, otherwise it must be at least 32.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Input shape:
        ``(batch, frames, bins, channels)`` with known ``channels``.

    Output shape:
        ``(batch, floor(max(frames, min_size) / 32), floor(max(bins, min_size) / 32), 1280)``.

    Example:

    >>> EfficientNetB0Encoder()(keras.ops.ones((2, 101, 64, 1))).shape
    (2, 3, 2, 1280)
    """

    def __init__(self, min_size=32, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(min_size, bool)
            or not isinstance(min_size, int)
            or (min_size != 0 and min_size < 32)
        ):
            raise ValueError(
                "EfficientNetB0Encoder: `min_size` must be 0 or an integer >= 32, "
                f"got {min_size!r}."
            )
        self.min_size = min_size
        self.backbone = None

    def build(self, input_shape):
        layer_stack.check_rank(
            "EfficientNetB0Encoder", input_shape, (4,), "(batch, frames, bins, channels)"
        )
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "EfficientNetB0Encoder needs a known channels axis, got shape "
                f"{tuple(input_shape)}."
            )
        full = keras.applications.EfficientNetB0(
            include_top=False, weights=None, input_shape=(None, None, channels)
        )
        # Start the graph at the stem padding, skipping the ImageNet preprocessing layers.
        stem_input = full.get_layer("stem_conv_pad").input
        self.backbone = keras.Model(stem_input, full.output, name="efficientnetb0")
        self.built = True

    def _pad_to_min_size(self, inputs):
        paddings = [[0, 0], [0, 0], [0, 0], [0, 0]]
        needed = False
        for axis in (1, 2):
            static = inputs.shape[axis]
            if static is None:
                paddings[axis][1] = ops.maximum(self.min_size - ops.shape(inputs)[axis], 0)
                needed = True
            elif static < self.min_size:
                paddings[axis][1] = self.min_size - static
                needed = True
        return ops.pad(inputs, paddings) if needed else inputs

    def call(self, inputs, training=None):
        if self.min_size > 0:
            inputs = self._pad_to_min_size(inputs)
        return self.backbone(inputs, training=training)

    def compute_output_shape(self, input_shape):
        def reduced(size):
            # With a None input size Keras pads every stride-2 stage as for even sizes,
            # so each stage maps n to floor(n / 2).
            return None if size is None else max(size, self.min_size) // 32

        return (input_shape[0], reduced(input_shape[1]), reduced(input_shape[2]), 1280)

    def get_config(self):
        config = super().get_config()
        config.update({"min_size": self.min_size})
        return config


@keras.saving.register_keras_serializable(package=layer_stack.PACKAGE)
class AudioClassifier(keras.Model):
    """Waveform classifier: frontend, (batch norm), encoder, global pooling, dense head.

    The frontend turns waveforms ``(batch, samples)`` into features
    ``(batch, frames, bins)``; a channel axis is appended and, if ``use_batch_norm``, a
    batch normalization over the bins is applied; the encoder maps the result to
    ``(batch, frames', bins', channels)`` (or ``(batch, frames', channels)``, e.g.
    `TransformerEncoder`); a global max (or average) pooling over all axes but the batch
    and channels gives an embedding that a dense layer maps to ``num_outputs`` logits. An
    encoder that pools itself (`SmallConvNet`) returns the embedding ``(batch, channels)``,
    which goes to the dense layer as it is. The original leaf-audio classifier is
    ``use_batch_norm=False, pooling="max"``. The ``training`` flag is forwarded to the
    frontend and the encoder, so SpecAugment, dropout and batch normalization behave.

    Args:
        num_outputs: Number of classes (output logits), or ``{task: number of classes}``
            for multi-task training: one dense head per task on the shared embedding,
            and the model returns ``{task: logits}`` (the LEAF paper's Table 3 setup).
        frontend: A Keras layer mapping waveforms to ``(batch, frames, bins)`` features
            (e.g. `leaf_keras.frontend.Leaf`), or None to feed features directly
            (``(batch, frames, bins)`` or ``(batch, frames, bins, channels)``).
        encoder: A Keras layer on ``(batch, frames, bins, channels)`` (e.g. `ConvNet`,
            `PANN`, `EfficientNetB0Encoder`, `SmallConvNet`,
            `leaf_keras.transformer.TransformerEncoder`), or None to pool the features
            directly.
        pooling: ``"max"`` (the original) or ``"avg"`` global pooling (unused with an
            encoder that returns ``(batch, channels)``).
        use_batch_norm: Whether to batch-normalize the features before the encoder (one
            mean and variance per bin).
        head_activation: Activation of the dense head; None gives logits.
        **kwargs: Standard `keras.Model` arguments (``name``, ...).

    Input shape:
        ``(batch, samples)`` or ``(batch, samples, 1)`` with a frontend, else features.
        A batch of clips of different lengths, zero-padded at the end, takes their
        ``lengths`` (int ``(batch,)``, samples, or frames without a frontend) or a
        samples ``mask`` ``(batch, samples)``: each clip then gets the logits it gets
        alone (`leaf_keras.masking`; the encoder must be a `ConvNet`, `ConvBlock`,
        `SmallConvNet` or None, and the frontend an exact engine).

    Output shape:
        ``(batch, num_outputs)``, or ``{task: (batch, num_outputs[task])}``.

    Example:

    >>> model = AudioClassifier(10, encoder=ConvNet([8, 16]))
    >>> model(keras.ops.ones((2, 20, 12))).shape
    (2, 10)
    >>> model(keras.ops.ones((2, 20, 12)), lengths=[20, 13]).shape
    (2, 10)
    """

    def __init__(
        self,
        num_outputs,
        frontend=None,
        encoder=None,
        pooling="max",
        use_batch_norm=True,
        head_activation=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(num_outputs, dict):
            if not num_outputs:
                raise ValueError("AudioClassifier: `num_outputs` must not be an empty dict.")
            for task, count in num_outputs.items():
                if not isinstance(task, str) or not task.isidentifier():
                    raise ValueError(
                        f"AudioClassifier: task names must be identifiers, got {task!r}."
                    )
                layer_stack.check_positive_int("AudioClassifier", f"num_outputs[{task!r}]", count)
            num_outputs = dict(num_outputs)
        else:
            layer_stack.check_positive_int("AudioClassifier", "num_outputs", num_outputs)
        for name, value in (("frontend", frontend), ("encoder", encoder)):
            if value is not None and not isinstance(value, keras.layers.Layer):
                raise ValueError(
                    f"AudioClassifier: `{name}` must be a keras Layer or None, got {value!r}."
                )
        if pooling not in ("max", "avg"):
            raise ValueError(f"AudioClassifier: `pooling` must be 'max' or 'avg', got {pooling!r}.")
        self.num_outputs = num_outputs
        self.frontend = frontend
        self.encoder = encoder
        self.pooling = pooling
        self.use_batch_norm = bool(use_batch_norm)
        self.head_activation = keras.activations.get(head_activation)
        self.feature_norm = (
            keras.layers.BatchNormalization(axis=2, name="feature_norm")
            if self.use_batch_norm
            else None
        )
        if isinstance(num_outputs, dict):
            self.head = None
            self.heads = {
                task: keras.layers.Dense(
                    count, activation=self.head_activation, name=f"head_{task}"
                )
                for task, count in num_outputs.items()
            }
        else:
            self.head = keras.layers.Dense(
                num_outputs, activation=self.head_activation, name="head"
            )
            self.heads = None

    def build(self, input_shape):
        # Running the forward pass on a symbolic tensor builds every sub-layer in order.
        self.call(keras.KerasTensor(tuple(input_shape), dtype=self.compute_dtype), training=False)
        self.built = True

    def set_weights(self, weights):
        # Keras assigns the frontend's variables directly: re-plan a band-limited
        # filterbank from them, as loading a saved classifier does.
        super().set_weights(weights)
        band_limited.update_band_plans(self)

    def embed(self, inputs, training=None, lengths=None, mask=None):
        """Returns the pooled embedding ``(batch, channels)`` that the head classifies.

        With ``lengths`` (samples per clip, int ``(batch,)``) or a samples ``mask``
        ``(batch, samples)``, the clips of a batch padded at the end are embedded as
        each clip alone would be (`leaf_keras.masking`).
        """
        if mask is not None and lengths is None:
            lengths = masking.lengths_from_mask(mask)
        if lengths is not None:
            lengths = masking.check_lengths(lengths, inputs.shape[0])
        outputs = inputs
        if self.frontend is None:
            return self.embed_features(outputs, training=training, lengths=lengths)
        if lengths is None:
            outputs = self.frontend(outputs, training=training)
            return self.embed_features(outputs, training=training)
        if not hasattr(self.frontend, "frame_lengths"):
            raise ValueError(
                f"AudioClassifier: `lengths` or `mask` was given, but the frontend "
                f"{type(self.frontend).__name__} has no `frame_lengths` method to say which "
                "frames belong to each clip."
            )
        frontend_kwargs = {}
        if "mask" in self.frontend.call_signature_parameters:
            # A whole-clip normalization in the frontend (mean_var_norm) needs it.
            frontend_kwargs["mask"] = masking.sequence_mask(lengths, ops.shape(inputs)[1])
        outputs = self.frontend(outputs, training=training, **frontend_kwargs)
        frame_lengths = ops.cast(self.frontend.frame_lengths(lengths), "int32")
        return self.embed_features(outputs, training=training, lengths=frame_lengths)

    def embed_features(self, features, training=None, lengths=None):
        """The embedding of frontend features ``(batch, frames, bins[, channels])``.

        What `embed` does after the frontend: a streaming classifier computes the
        frames itself (`leaf_keras.streaming`) and classifies windows of them with
        `classify_features`. ``lengths`` (valid frames per clip, int ``(batch,)``)
        makes the encoder and the pooling ignore the frames past each clip's end.
        """
        outputs = features
        if len(outputs.shape) == 3:
            outputs = ops.expand_dims(outputs, -1)
        if len(outputs.shape) != 4:
            raise ValueError(
                "AudioClassifier expects features of shape (batch, frames, bins[, channels]) "
                f"before the encoder, got shape {tuple(outputs.shape)}."
            )
        if lengths is not None:
            lengths = masking.check_lengths(lengths, outputs.shape[0])
        if self.feature_norm is not None:
            if lengths is None:
                outputs = self.feature_norm(outputs, training=training)
            else:
                mask = masking.sequence_mask(lengths, ops.shape(outputs)[1])[:, :, None]
                mask = ops.broadcast_to(mask, ops.shape(outputs)[:-1])
                outputs = self.feature_norm(outputs, training=training, mask=mask)
        if self.encoder is not None:
            if lengths is None:
                outputs = self.encoder(outputs, training=training)
            elif isinstance(self.encoder, layer_stack.LayerStack):
                outputs = self.encoder(outputs, training=training, lengths=lengths)
                lengths = self.encoder.output_lengths(lengths)
            else:
                raise ValueError(
                    f"AudioClassifier: `lengths` or `mask` was given, but the encoder "
                    f"{type(self.encoder).__name__} cannot ignore padded frames (masks pass "
                    "the stacks of models and pann: ConvNet, SmallConvNet, ConvBlock). "
                    "Batch clips of equal length instead."
                )
        if len(outputs.shape) == 2:
            # The encoder pooled already (e.g. SmallConvNet): no axis is left to pool, and
            # this skips the reduction rather than rely on what a reduction over no axes
            # (`axis=()`) does on each backend.
            return outputs
        if lengths is not None:
            return masking.global_pooling(outputs, lengths, self.pooling)
        pooled_axes = tuple(range(1, len(outputs.shape) - 1))
        if self.pooling == "max":
            return ops.max(outputs, axis=pooled_axes)
        return ops.mean(outputs, axis=pooled_axes)

    def call(self, inputs, training=None, lengths=None, mask=None):
        return self._classify(self.embed(inputs, training=training, lengths=lengths, mask=mask))

    def classify_features(self, features, training=None, lengths=None):
        """Logits (or ``{task: logits}``) of frontend features ``(batch, frames, bins)``;
        ``lengths``: valid frames per clip, as in `embed_features`."""
        return self._classify(self.embed_features(features, training=training, lengths=lengths))

    def _classify(self, embedding):
        if self.heads is None:
            return self.head(embedding)
        return {task: head(embedding) for task, head in self.heads.items()}

    def compute_mask(self, inputs, previous_mask):
        # A samples mask is consumed (see `embed`); the logits have no time axis.
        return None

    def compute_output_shape(self, input_shape):
        if isinstance(self.num_outputs, dict):
            return {task: (input_shape[0], count) for task, count in self.num_outputs.items()}
        return (input_shape[0], self.num_outputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_outputs": self.num_outputs,
                "frontend": keras.saving.serialize_keras_object(self.frontend),
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "pooling": self.pooling,
                "use_batch_norm": self.use_batch_norm,
                "head_activation": keras.activations.serialize(self.head_activation),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("frontend", "encoder"):
            if config.get(name) is not None:
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
