"""SpecAugment: random time warping, time masking and frequency masking.

A backend-agnostic re-implementation of the augmentation that the original LEAF code
obtained from lingvo's ``SpectrumAugmenter`` (Park et al., "SpecAugment: A Simple Data
Augmentation Method for Automatic Speech Recognition", Interspeech 2019,
https://arxiv.org/abs/1904.08779; used by Zeghidour et al., "LEAF: A Learnable Frontend
for Audio Classification", ICLR 2021, https://arxiv.org/abs/2101.08596).
"""

import keras
from keras import ops

from leaf_keras.ops import precision


def _check_non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"SpecAugment: `{name}` must be a non-negative integer, got {value!r}.")


def _check_ratio(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"SpecAugment: `{name}` must be a float in [0, 1], got {value!r}.")


@keras.saving.register_keras_serializable(package="leaf_keras")
class SpecAugment(keras.layers.Layer):
    """Randomly warps the time axis and zeroes bands of frames and of frequency bins.

    Applied, in this order, independently to every example of the batch:

    1. Time warping: a random anchor frame ``origin`` (uniform in ``[1, frames - 2]``) is
       moved by an integer shift drawn uniformly from
       ``[-time_warp_max_frames, time_warp_max_frames]`` (clipped to
       ``floor(time_warp_max_ratio * frames)``). The time axis is then resampled by linear
       interpolation along the piecewise linear map that sends frame 0 to 0, ``origin``
       to ``origin + shift`` and the last frame to the last frame. Every output frame is a
       convex combination of two adjacent input frames and no frame moves by more than
       ``|shift|``.
    2. Time masking: ``time_mask_count`` masks; each has a width drawn uniformly from
       ``{0, ..., time_mask_max_frames - 1}`` (capped at
       ``max(floor(time_mask_max_ratio * frames), 1)``) and a start drawn uniformly among
       the positions where it fits. Masked frames are set to exactly zero in all bins.
    3. Frequency masking: ``freq_mask_count`` masks of width in
       ``{0, ..., freq_mask_max_bins - 1}``, placed the same way along the bins; masked
       bins are set to exactly zero in all frames.

    Masks may overlap, so at most ``count * (max - 1)`` frames (bins) are zeroed. Sizes and
    positions follow lingvo's ``SpectrumAugmenter`` with a static warp bound. One
    deliberate difference: lingvo's warp keeps the point ``frames`` (one past the end)
    fixed, which makes the last output frame read partly outside the input; here the warp
    keeps the first and the last frame exactly. A count or maximum of 0 disables that
    transformation.

    The layer is the identity unless called with ``training=True``. Randomness comes from
    a ``keras.random.SeedGenerator``: two layers built with the same ``seed`` produce the
    same sequence of augmentations, and the generator state is tracked by Keras so the
    layer also works inside jit-compiled training steps on every backend.

    Args:
        freq_mask_max_bins: Exclusive upper bound of a frequency mask's width, in bins.
        freq_mask_count: Number of frequency masks per example.
        time_mask_max_frames: Exclusive upper bound of a time mask's width, in frames.
        time_mask_count: Number of time masks per example.
        time_mask_max_ratio: Time masks are at most this fraction of the frames wide.
        time_warp_max_frames: Largest displacement, in frames, of the warp anchor.
        time_warp_max_ratio: The displacement is also at most this fraction of the frames.
        seed: Optional integer seed of the random generator.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input shape:
        ``(batch, frames, bins)`` or ``(batch, frames, bins, 1)``; ``frames`` may be
        ``None``.

    Output shape:
        Same as the input.

    Example:

    >>> augment = SpecAugment(seed=0)
    >>> features = keras.random.uniform((4, 100, 40))
    >>> augment(features, training=True).shape
    (4, 100, 40)
    """

    def __init__(
        self,
        freq_mask_max_bins=10,
        freq_mask_count=2,
        time_mask_max_frames=10,
        time_mask_count=2,
        time_mask_max_ratio=1.0,
        time_warp_max_frames=8,
        time_warp_max_ratio=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("freq_mask_max_bins", freq_mask_max_bins),
            ("freq_mask_count", freq_mask_count),
            ("time_mask_max_frames", time_mask_max_frames),
            ("time_mask_count", time_mask_count),
            ("time_warp_max_frames", time_warp_max_frames),
        ):
            _check_non_negative_int(name, value)
        _check_ratio("time_mask_max_ratio", time_mask_max_ratio)
        _check_ratio("time_warp_max_ratio", time_warp_max_ratio)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"SpecAugment: `seed` must be None or an integer, got {seed!r}.")
        self.freq_mask_max_bins = freq_mask_max_bins
        self.freq_mask_count = freq_mask_count
        self.time_mask_max_frames = time_mask_max_frames
        self.time_mask_count = time_mask_count
        self.time_mask_max_ratio = float(time_mask_max_ratio)
        self.time_warp_max_frames = time_warp_max_frames
        self.time_warp_max_ratio = float(time_warp_max_ratio)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _check_input_shape(self, input_shape):
        rank = len(input_shape)
        if rank not in (3, 4) or (rank == 4 and input_shape[-1] not in (1, None)):
            raise ValueError(
                "SpecAugment expects features of shape (batch, frames, bins) or "
                f"(batch, frames, bins, 1), got shape {tuple(input_shape)}."
            )

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _uniform(self, shape):
        return keras.random.uniform(shape, dtype="float32", seed=self.seed_generator)

    def _band_mask(self, batch_size, length, max_width, count, max_ratio):
        """Returns a boolean [batch, length] array, True inside the random bands."""
        length_f = ops.cast(length, "float32")
        width = ops.floor(max_width * self._uniform((batch_size, count)))
        # Like lingvo, the ratio caps the width but never below one element.
        width = ops.minimum(width, ops.maximum(ops.floor(max_ratio * length_f), 1.0))
        start = ops.floor(self._uniform((batch_size, count)) * (length_f - width + 1.0))
        positions = ops.cast(ops.arange(length), "float32")[None, None, :]
        inside = ops.logical_and(
            positions >= start[:, :, None], positions < (start + width)[:, :, None]
        )
        return ops.any(inside, axis=1)

    def _warp_source_positions(self, batch_size, frames):
        """For every output frame, the (fractional) input frame it is read from."""
        frames_f = ops.cast(frames, "float32")
        last = frames_f - 1.0
        max_shift = float(self.time_warp_max_frames)
        shift = ops.floor(self._uniform((batch_size,)) * (2.0 * max_shift + 1.0)) - max_shift
        bound = ops.floor(self.time_warp_max_ratio * frames_f)
        shift = ops.clip(shift, -bound, bound)
        # Anchor and its destination are interior frames so both segments are non-empty.
        origin = ops.floor(self._uniform((batch_size,)) * ops.maximum(frames_f - 2.0, 0.0)) + 1.0
        destination = ops.minimum(ops.maximum(origin + shift, 1.0), last - 1.0)
        origin, destination = origin[:, None], destination[:, None]
        positions = ops.cast(ops.arange(frames), "float32")[None, :]
        safe_destination = ops.maximum(destination, 1.0)
        safe_rest = ops.maximum(last - destination, 1.0)
        # Written relative to each fixed end so frames 0 and last map to themselves exactly.
        before = positions * (origin / safe_destination)
        after = last - (last - positions) * ((last - origin) / safe_rest)
        source = ops.where(positions <= destination, before, after)
        # Fewer than 3 frames leave no interior anchor: no warping.
        source = ops.where(frames_f >= 3.0, source, positions)
        return ops.clip(source, 0.0, ops.maximum(last, 0.0))

    def _time_warp(self, features):
        shape = ops.shape(features)
        batch_size, frames = shape[0], shape[1]
        source = self._warp_source_positions(batch_size, frames)
        lower = ops.floor(source)
        fraction = ops.cast(source - lower, features.dtype)[:, :, None]
        lower = ops.cast(lower, "int32")
        upper = ops.minimum(lower + 1, ops.cast(frames, "int32") - 1)

        def gather_frames(indices):
            indices = ops.broadcast_to(indices[:, :, None], shape)
            return ops.take_along_axis(features, indices, axis=1)

        return gather_frames(lower) * (1.0 - fraction) + gather_frames(upper) * fraction

    @precision.keeps_float64
    def call(self, inputs, training=False):
        if not training:
            return inputs
        self._check_input_shape(inputs.shape)
        features = inputs[..., 0] if len(inputs.shape) == 4 else inputs
        shape = ops.shape(features)
        batch_size, frames, bins = shape[0], shape[1], shape[2]
        if self.time_warp_max_frames > 0 and self.time_warp_max_ratio > 0.0:
            features = self._time_warp(features)
        if self.time_mask_max_frames > 0 and self.time_mask_count > 0:
            if self.time_mask_max_ratio > 0.0:
                masked_frames = self._band_mask(
                    batch_size,
                    frames,
                    self.time_mask_max_frames,
                    self.time_mask_count,
                    self.time_mask_max_ratio,
                )
                features = ops.where(masked_frames[:, :, None], ops.zeros_like(features), features)
        if self.freq_mask_max_bins > 0 and self.freq_mask_count > 0:
            masked_bins = self._band_mask(
                batch_size, bins, self.freq_mask_max_bins, self.freq_mask_count, 1.0
            )
            features = ops.where(masked_bins[:, None, :], ops.zeros_like(features), features)
        return features[..., None] if len(inputs.shape) == 4 else features

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "freq_mask_max_bins": self.freq_mask_max_bins,
                "freq_mask_count": self.freq_mask_count,
                "time_mask_max_frames": self.time_mask_max_frames,
                "time_mask_count": self.time_mask_count,
                "time_mask_max_ratio": self.time_mask_max_ratio,
                "time_warp_max_frames": self.time_warp_max_frames,
                "time_warp_max_ratio": self.time_warp_max_ratio,
                "seed": self.seed,
            }
        )
        return config
