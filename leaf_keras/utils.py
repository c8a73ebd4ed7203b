"""Small numerical helpers shared by the LEAF layers: mel scale and windows.

Everything here is numpy: these functions build constant filters and
initial values, they never run inside a layer's `call`.
"""

import enum

import numpy as np


def hz2mel(frequency_hz):
    """Converts frequencies from hertz to the (HTK) mel scale.

    Args:
        frequency_hz: float or numpy array, frequencies in Hz.

    Returns:
        The same frequencies in mels, `2595 * log10(1 + f / 700)`.
    """
    return 2595.0 * np.log10(1.0 + np.asarray(frequency_hz) / 700.0)


def mel2hz(frequency_mel):
    """Converts frequencies from the (HTK) mel scale to hertz.

    Args:
        frequency_mel: float or numpy array, frequencies in mels.

    Returns:
        The same frequencies in Hz, `700 * (10 ** (m / 2595) - 1)`.
    """
    return 700.0 * (np.power(10.0, np.asarray(frequency_mel) / 2595.0) - 1.0)


class WindowType(enum.Enum):
    """Window functions available to `window`."""

    HAMMING = 1
    HANNING = 2
    SQUARED_HANNING = 3

    @classmethod
    def from_value(cls, value):
        """Returns the member for a `WindowType`, a name or a number.

        Args:
            value: a `WindowType`, a case-insensitive name such as
                `"squared_hanning"` (also `"hann"`, `"squared_hann"`), or the
                enum's integer value.

        Returns:
            The matching `WindowType`.

        Raises:
            ValueError: if `value` names no window type.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().upper()
            if key.startswith("WINDOWTYPE."):
                key = key[len("WINDOWTYPE.") :]
            key = {"HANN": "HANNING", "SQUARED_HANN": "SQUARED_HANNING"}.get(key, key)
            if key in cls.__members__:
                return cls[key]
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            for member in cls:
                if member.value == value:
                    return member
        raise ValueError(
            f"Unknown window type {value!r}; expected one of "
            f"{[m.name.lower() for m in cls]} or a WindowType."
        )


def window(window_type, tmax):
    """Builds a window function of `tmax` samples.

    The Hanning window keeps the original LEAF definition
    `0.5 * (1 - cos(2 pi (n - 1) / (tmax - 1)))` for n = 0 .. tmax - 1 (it is
    shifted by one sample compared with numpy's `hanning`); the Hamming window
    is the periodic `0.54 - 0.46 cos(2 pi n / tmax)`.

    Args:
        window_type: a `WindowType` or its name (see `WindowType.from_value`).
        tmax: int, the window length in samples.

    Returns:
        A float64 numpy array of shape `(tmax,)`.

    Raises:
        ValueError: for an unknown window type or a non-positive length.
    """
    window_type = WindowType.from_value(window_type)
    tmax = int(tmax)
    if tmax < 1:
        raise ValueError(f"Window length must be >= 1, got tmax={tmax}.")
    n = np.arange(tmax, dtype=np.float64)
    if window_type == WindowType.HAMMING:
        return 0.54 - 0.46 * np.cos(2.0 * np.pi * n / tmax)
    # The original divides by (tmax - 1); a one-sample window would divide by 0.
    denominator = max(tmax - 1, 1)
    hanning = 0.5 * (1.0 - np.cos(2.0 * np.pi * (n - 1.0) / denominator))
    if window_type == WindowType.HANNING:
        return hanning
    return hanning**2


def window_size_in_samples(sample_rate, window_len_ms):
    """Number of taps of a `window_len_ms` window, as LEAF computes it.

    Args:
        sample_rate: sampling rate in Hz.
        window_len_ms: window length in milliseconds.

    Returns:
        `int(sample_rate * window_len_ms // 1000 + 1)` (401 for 25 ms at 16 kHz).
    """
    return int(sample_rate * window_len_ms // 1000 + 1)


def stride_in_samples(sample_rate, window_stride_ms):
    """Hop size of a `window_stride_ms` stride, as LEAF computes it.

    Args:
        sample_rate: sampling rate in Hz.
        window_stride_ms: stride in milliseconds.

    Returns:
        `int(sample_rate * window_stride_ms // 1000)` (160 for 10 ms at 16 kHz).
    """
    return int(sample_rate * window_stride_ms // 1000)


def check_window_arguments(kernel_size, strides, padding):
    """Validates the window arguments of a convolution or pooling layer.

    Args:
        kernel_size: window length in samples, >= 1.
        strides: hop in samples, >= 1.
        padding: "same" or "valid" (any case).

    Returns:
        `(int(kernel_size), int(strides), lower-case padding)`.

    Raises:
        ValueError: naming the argument and the value it got.
    """
    if int(kernel_size) < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}.")
    if int(strides) < 1:
        raise ValueError(f"strides must be >= 1, got {strides}.")
    padding = str(padding).lower()
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}.")
    return int(kernel_size), int(strides), padding


def check_frames_shape(layer, input_shape):
    """Raises ValueError unless `input_shape` is `[batch, time, channels]`
    with a known channel count (the input of poolings and compressions)."""
    if len(input_shape) != 3 or input_shape[-1] is None:
        raise ValueError(
            f"{layer.__class__.__name__} expects inputs [batch, time, "
            f"channels] with a known channel count, got {tuple(input_shape)}."
        )
