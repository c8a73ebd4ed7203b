"""The mel baselines of the LEAF paper: log mel filterbanks and mel-PCEN.

They compute the STFT of `tf.signal.stft` (Hann window, `pad_end=True`), the
power spectrum and the mel matrix of `tf.signal.linear_to_mel_weight_matrix`
with `keras.ops`, so they match the original's `tf.signal` baseline on
every backend.

Reference: Zeghidour et al., "LEAF: A Learnable Frontend for Audio
Classification", ICLR 2021, Section 4 (baselines).
"""

import keras
import numpy as np
from keras import ops

from leaf_keras import masking
from leaf_keras import melfilters
from leaf_keras import postprocessing
from leaf_keras import serialization
from leaf_keras import utils
from leaf_keras import waveforms
from leaf_keras.ops import precision


def frame_signal(signal, frame_length, frame_step):
    """Frames `[batch, time]` like `tf.signal.frame(..., pad_end=True)`.

    Args:
        signal: float tensor `[batch, time]`.
        frame_length: samples per frame.
        frame_step: hop between frames.

    Returns:
        A tensor `[batch, ceil(time / frame_step), frame_length]`, the end
        zero-padded.
    """
    time = ops.shape(signal)[1]
    batch = ops.shape(signal)[0]
    num_frames = (time + frame_step - 1) // frame_step
    blocks_per_frame = -(-frame_length // frame_step)
    padded_length = (num_frames + blocks_per_frame - 1) * frame_step
    signal = ops.pad(signal, [[0, 0], [0, padded_length - time]])
    blocks = ops.reshape(signal, (batch, -1, frame_step))
    # Frame j is made of blocks j .. j + blocks_per_frame - 1.
    frames = ops.concatenate(
        [blocks[:, offset : offset + num_frames, :] for offset in range(blocks_per_frame)], axis=-1
    )
    return frames[:, :, :frame_length]


@keras.saving.register_keras_serializable(package="leaf_keras")
class MelFilterbanks(keras.layers.Layer):
    """Log mel filterbanks, computed like the original (tf.signal) baseline.

    STFT as `tf.signal.stft(frame_length=window_size, frame_step=stride,
    fft_length=n_fft, pad_end=True)` with its default Hann window (TF's
    "periodic" window, which for an odd length such as 401 is the symmetric
    `0.5 - 0.5 cos(2 pi n / (L - 1))`), power
    spectrum, mel matrix (`tf.signal.linear_to_mel_weight_matrix`
    definition, `min_freq`–`max_freq`), then `compression_fn`
    (`LogCompression(1e-5)` by default).

    Args:
        n_filters: number of mel bands.
        sample_rate: sampling rate in Hz.
        n_fft: FFT size.
        window_len: window length in ms.
        window_stride: stride in ms.
        compression_fn: compression layer or None (power mel filterbanks);
            `log_compression` forms are accepted as in `Leaf`.
        min_freq: lowest frequency in Hz.
        max_freq: highest frequency in Hz (None: sample_rate / 2).
        name: layer name.

    Input shape:
        `(batch, time)` or `(batch, time, 1)`.

    Output shape:
        `(batch, ceil(time / stride), n_filters)`.
    """

    def __init__(
        self,
        n_filters=40,
        sample_rate=16000,
        n_fft=512,
        window_len=25.0,
        window_stride=10.0,
        compression_fn=serialization.DEFAULT,
        min_freq=60.0,
        max_freq=7800.0,
        name="mel_filterbanks",
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        self.n_filters = int(n_filters)
        self.sample_rate = sample_rate
        self.n_fft = int(n_fft)
        self.window_len = float(window_len)
        self.window_stride = float(window_stride)
        self.window_size = utils.window_size_in_samples(sample_rate, window_len)
        self.stride = utils.stride_in_samples(sample_rate, window_stride)
        if self.stride < 1:
            raise ValueError(
                f"window_stride={window_stride} ms is below one "
                f"sample at sample_rate={sample_rate}."
            )
        if self.n_fft < self.window_size:
            raise ValueError(
                f"n_fft={n_fft} is shorter than the window ({self.window_size} samples)."
            )
        self.min_freq = float(min_freq)
        self.max_freq = float(max_freq) if max_freq else sample_rate / 2.0
        if serialization.is_default(compression_fn):
            compression_fn = postprocessing.LogCompression(log_offset=1e-5)
        self.compression_fn = postprocessing.compression_layer(compression_fn)
        if kwargs.get("dtype") is not None:
            precision.share_dtype_policy(self)
        # Like tf.signal, the mel matrix is computed in the working precision
        # (float32, or float64 under a float64 policy).
        self._mel_matrices = {
            dtype: melfilters.linear_to_mel_weight_matrix(
                num_mel_bins=self.n_filters,
                num_spectrogram_bins=self.n_fft // 2 + 1,
                sample_rate=sample_rate,
                lower_edge_hertz=self.min_freq,
                upper_edge_hertz=self.max_freq,
                dtype=dtype,
            )
            for dtype in ("float32", "float64")
        }
        # tf.signal.hann_window(periodic=True) is only periodic for even
        # lengths: an odd window (401 taps) is the symmetric one, n / (L - 1).
        n = np.arange(self.window_size)
        period = self.window_size - (self.window_size % 2)
        self._window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / max(period, 1))

    @property
    def mel_filters(self):
        """The `(n_fft // 2 + 1, n_filters)` float32 mel matrix (numpy)."""
        return self._mel_matrices["float32"]

    def build(self, input_shape):
        waveforms.check_waveforms(input_shape, None, self.window_size, self.name)
        if self.compression_fn is not None and not self.compression_fn.built:
            self.compression_fn.build((input_shape[0], None, self.n_filters))

    def mel_power(self, inputs):
        """Mel-band power `[batch, frames, n_filters]` (no compression)."""
        waveforms.check_waveforms(inputs.shape, inputs.dtype, self.window_size, self.name)
        dtype = precision.working_dtype(self)
        inputs = ops.cast(inputs, dtype)
        if len(inputs.shape) == 3:
            inputs = inputs[:, :, 0]
        frames = frame_signal(inputs, self.window_size, self.stride)
        frames = frames * ops.convert_to_tensor(self._window, dtype)
        real, imag = ops.rfft(frames, fft_length=self.n_fft)
        power = ops.square(real) + ops.square(imag)
        return ops.matmul(power, ops.convert_to_tensor(self._mel_matrices[dtype]))

    @precision.keeps_float64
    def call(self, inputs, mask=None):
        # The frames of a clip padded at the end are the clip's own: `mask` (samples,
        # `(batch, time)`) changes nothing here, `compute_mask` says which frames they are.
        del mask
        outputs = self.mel_power(inputs)
        if self.compression_fn is not None:
            outputs = self.compression_fn(outputs)
        return ops.cast(outputs, self.compute_dtype)

    def frame_lengths(self, num_samples):
        """Frames of a clip of `num_samples` samples (an int, or an int tensor `(batch,)`).

        The frames of a clip padded at the end are the clip's own up to this count.
        """
        return masking.window_lengths(num_samples, self.window_size, self.stride, "same")

    def compute_mask(self, inputs, mask=None):
        """The frames mask `(batch, frames)` of a samples mask `(batch, time)`, or None."""
        if mask is None:
            return None
        return masking.frames_mask(mask, self.stride)

    def compute_output_shape(self, input_shape):
        waveforms.check_waveforms(input_shape, None, self.window_size, self.name)
        time = input_shape[1]
        frames = None if time is None else -(-time // self.stride)
        return (input_shape[0], frames, self.n_filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "n_filters": self.n_filters,
                "sample_rate": self.sample_rate,
                "n_fft": self.n_fft,
                "window_len": self.window_len,
                "window_stride": self.window_stride,
                "compression_fn": keras.saving.serialize_keras_object(self.compression_fn),
                "min_freq": self.min_freq,
                "max_freq": self.max_freq,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="leaf_keras")
class MelPCEN(MelFilterbanks):
    """Mel-PCEN baseline: mel filterbank energies compressed by PCEN.

    The paper's "Mel-PCEN": `MelFilterbanks` power (same STFT and mel
    matrix), then by default the same learnable PCEN as LEAF (alpha 0.96,
    smoothing 0.04 learned per channel, delta 2, root 2, floor 1e-12,
    alpha/delta/root trainable).

    Args:
        compression_fn: the PCEN layer (default: LEAF's PCEN, see above).
        name: layer name.
        **kwargs: other `MelFilterbanks` arguments.
    """

    def __init__(self, compression_fn=serialization.DEFAULT, name="mel_pcen", **kwargs):
        if serialization.is_default(compression_fn):
            compression_fn = postprocessing.leaf_pcen()
        super().__init__(compression_fn=compression_fn, name=name, **kwargs)
