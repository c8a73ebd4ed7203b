"""Reading audio files from disk, with the checks the folder-based datasets need.

`tf.audio.decode_wav` (used inside tf.data pipelines) only decodes 16-bit PCM WAV,
so folder datasets check every file's header up front with the standard library
(`inspect_wav`) and skip, count and log what the pipeline could not decode, instead
of failing in the middle of an epoch. Python-side decoding (`read_audio`, used by
the AudioSet builder) also reads FLAC/OGG through `soundfile` when it is installed.
"""

import os
import wave

import numpy as np


class DataNotFoundError(FileNotFoundError, ValueError):
    """A dataset folder or one of its required files does not exist.

    Subclasses both FileNotFoundError and ValueError so callers can catch either.
    """


class UndecodableAudioError(ValueError):
    """An audio file is corrupt, truncated or in an unsupported format."""


def require_path(path: str, what: str, is_dir: bool = False, hint: str = "") -> str:
    """Returns `path` if it exists, else raises DataNotFoundError naming it (and `hint`)."""
    exists = os.path.isdir(path) if is_dir else os.path.isfile(path)
    if not exists:
        kind = "folder" if is_dir else "file"
        message = f"{what}: expected a {kind} at {path!r}, but it does not exist."
        raise DataNotFoundError(f"{message} {hint}" if hint else message)
    return path


def inspect_wav(path: str, sample_rate: int) -> tuple:
    """Checks that `path` is a complete 16-bit PCM WAV file at `sample_rate`.

    Reads only the header and compares the declared data size with the file size,
    which catches empty, truncated and non-WAV files without decoding the samples.

    Args:
        path: WAV file path.
        sample_rate: the sample rate the dataset requires.

    Returns:
        (num_frames, num_channels).

    Raises:
        UndecodableAudioError: naming the file and what is wrong with it.
    """
    try:
        with wave.open(path, "rb") as reader:
            num_frames = reader.getnframes()
            num_channels = reader.getnchannels()
            sample_width = reader.getsampwidth()
            file_rate = reader.getframerate()
    except (wave.Error, EOFError, OSError) as error:
        raise UndecodableAudioError(f"{path}: not a readable PCM WAV file ({error}).") from error
    if sample_width != 2:
        raise UndecodableAudioError(f"{path}: {8 * sample_width}-bit samples; expected 16-bit PCM.")
    if file_rate != sample_rate:
        raise UndecodableAudioError(
            f"{path}: sample rate {file_rate} Hz; expected {sample_rate} Hz."
        )
    data_bytes = num_frames * num_channels * sample_width
    # The smallest WAV header (RIFF + fmt + data chunk headers) is 44 bytes.
    if os.path.getsize(path) < 44 + data_bytes:
        raise UndecodableAudioError(
            f"{path}: truncated ({os.path.getsize(path)} bytes for {num_frames} frames)."
        )
    if num_frames == 0:
        raise UndecodableAudioError(f"{path}: contains no samples.")
    return num_frames, num_channels


def read_audio(path: str) -> tuple:
    """Decodes an audio file to a mono int16 numpy array.

    WAV (16-bit PCM) is read with the standard library; other formats (FLAC, OGG,
    24-bit/float WAV) with `soundfile` when it is installed.

    Args:
        path: audio file path.

    Returns:
        (samples int16 [time], sample_rate).

    Raises:
        UndecodableAudioError: naming the file when it cannot be decoded.
    """
    try:
        with wave.open(path, "rb") as reader:
            if reader.getsampwidth() == 2:
                channels = reader.getnchannels()
                rate = reader.getframerate()
                raw = reader.readframes(reader.getnframes())
                expected = reader.getnframes() * channels * 2
                if len(raw) != expected:
                    raise UndecodableAudioError(
                        f"{path}: truncated ({len(raw)} of {expected} data bytes)."
                    )
                if not raw:
                    raise UndecodableAudioError(f"{path}: contains no samples.")
                samples = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)
                return _to_mono_int16(samples), rate
    # The standard library's wave raises RuntimeError for some malformed headers.
    except (wave.Error, EOFError, RuntimeError) as error:
        wave_error = error
    else:
        wave_error = None
    try:
        import soundfile  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        raise UndecodableAudioError(
            f"{path}: not a 16-bit PCM WAV file ({wave_error}); install `soundfile` to read "
            "FLAC/OGG/24-bit files."
        ) from error
    try:
        if soundfile.info(path).subtype in ("FLOAT", "DOUBLE"):
            samples, rate = _read_float(soundfile, path)
        else:
            samples, rate = soundfile.read(path, dtype="int16", always_2d=True)
    except UndecodableAudioError:
        raise
    except Exception as error:  # soundfile raises several error types.
        raise UndecodableAudioError(f"{path}: cannot decode audio ({error}).") from error
    if samples.shape[0] == 0:
        raise UndecodableAudioError(f"{path}: contains no samples.")
    return _to_mono_int16(samples), rate


def _read_float(soundfile, path):
    """A float WAV/FLAC as int16, refusing NaN and inf (a cast would hide them)."""
    samples, rate = soundfile.read(path, dtype="float64", always_2d=True)
    if not np.all(np.isfinite(samples)):
        count = int(np.sum(~np.isfinite(samples)))
        raise UndecodableAudioError(f"{path}: contains {count} NaN or inf samples.")
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16), rate


def _to_mono_int16(samples: np.ndarray) -> np.ndarray:
    """Averages [time, channels] int16 to mono int16 [time]."""
    if samples.shape[1] == 1:
        return samples[:, 0].astype(np.int16)
    return np.round(samples.astype(np.float64).mean(axis=1)).astype(np.int16)
