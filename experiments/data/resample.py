"""Integer-ratio resampling in TensorFlow, so every built-in task runs at 16 kHz."""

import numpy as np
import tensorflow as tf

# scipy.signal.resample_poly's default filter: half length 10 * factor, Kaiser beta 5.
_HALF_WIDTH = 10
_KAISER_BETA = 5.0


def lowpass_taps(factor: int) -> np.ndarray:
    """Kaiser-windowed sinc low-pass for resampling by `factor` (cutoff = Nyquist / factor).

    The same design as scipy.signal.resample_poly's default filter, with unit DC gain.
    """
    half = _HALF_WIDTH * factor
    t = np.arange(-half, half + 1, dtype=np.float64)
    taps = np.sinc(t / factor) * np.kaiser(2 * half + 1, _KAISER_BETA)
    return (taps / taps.sum()).astype(np.float32)


def integer_ratio(input_rate: int, output_rate: int) -> tuple:
    """`(up, down)` factors from `input_rate` to `output_rate` (one of them 1).

    Raises:
        ValueError: if neither rate divides the other.
    """
    if output_rate % input_rate and input_rate % output_rate:
        raise ValueError(
            f"Cannot resample {input_rate} Hz to {output_rate} Hz: only integer ratios are "
            "supported; convert the audio beforehand (e.g. with sox or ffmpeg)."
        )
    return max(output_rate // input_rate, 1), max(input_rate // output_rate, 1)


def resample(samples: tf.Tensor, input_rate: int, output_rate: int) -> tf.Tensor:
    """Resamples a float waveform [time] when one rate is an integer multiple of the other.

    Args:
        samples: float32 waveform [time].
        input_rate: its sample rate in Hz.
        output_rate: the wanted sample rate in Hz.

    Returns:
        float32 waveform [ceil(time * output_rate / input_rate)].

    Raises:
        ValueError: if neither rate divides the other.
    """
    if input_rate == output_rate:
        return samples
    up, down = integer_ratio(input_rate, output_rate)
    taps = lowpass_taps(max(up, down))
    num_samples = tf.shape(samples)[0]
    stuffed = tf.reshape(tf.stack([samples] + [tf.zeros_like(samples)] * (up - 1), axis=1), [-1])
    # Zero-stuffing divides the signal's level by `up`; the filter restores it.
    kernel = tf.constant(taps * up)[:, None, None]
    half = (len(taps) - 1) // 2
    padded = tf.pad(stuffed, [[half, half]])
    filtered = tf.nn.conv1d(padded[None, :, None], kernel, stride=1, padding="VALID")[0, :, 0]
    output_length = (num_samples * up + down - 1) // down
    return filtered[::down][:output_length]


def resample_numpy(samples: np.ndarray, input_rate: int, output_rate: int) -> np.ndarray:
    """numpy twin of `resample` for Python-side decoding (same filter, same lengths)."""
    if input_rate == output_rate:
        return samples
    up, down = integer_ratio(input_rate, output_rate)
    taps = lowpass_taps(max(up, down)).astype(np.float64) * up
    stuffed = np.zeros(len(samples) * up)
    stuffed[::up] = samples
    filtered = np.convolve(stuffed, taps, mode="same")
    return filtered[::down][: (len(samples) * up + down - 1) // down]
