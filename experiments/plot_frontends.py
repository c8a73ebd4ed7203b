r"""Plots what the five frontends output, at initialization, for one speech clip.

The Keras 3 counterpart of the figure in the google-research/leaf-audio README: the
waveform, then LEAF, mel filterbanks, Time-Domain Filterbanks, SincNet and SincNet+ as
time-frequency images (filter index on the vertical axis, low frequencies at the bottom).
The default clip, images/speech_sample.wav, is a 1 s, 16 kHz text-to-speech "seven".

Usage (from the repository root; matplotlib is needed, any Keras backend works):

    python -m experiments.plot_frontends \
        --audio images/speech_sample.wav --output images/frontends.png
"""

import argparse
import os
import wave

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The frontends' default sample rate.
SAMPLE_RATE = 16000
DEFAULT_AUDIO = os.path.join(_ROOT, "images", "speech_sample.wav")
DEFAULT_OUTPUT = os.path.join(_ROOT, "images", "frontends.png")


def read_wav(path):
    """Reads a mono 16-bit PCM WAV file as float32 samples in [-1, 1).

    Args:
        path: path of the WAV file.

    Returns:
        A float32 numpy array of shape (samples,).

    Raises:
        ValueError: if the file is not mono 16-bit PCM at `SAMPLE_RATE`.
    """
    with wave.open(path, "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        if channels != 1 or width != 2 or rate != SAMPLE_RATE:
            raise ValueError(
                f"{path}: expected mono 16-bit PCM at {SAMPLE_RATE} Hz, got "
                f"{channels} channel(s), {8 * width}-bit samples at {rate} Hz."
            )
        pcm = wav.readframes(wav.getnframes())
    return np.frombuffer(pcm, dtype="<i2").astype("float32") / 32768.0


def frontend_outputs(waveform):
    """Runs the five frontends (default arguments, untrained) on one waveform.

    Args:
        waveform: float32 array of shape (samples,) at 16 kHz.

    Returns:
        A list of (title, features) with features of shape (frames, n_filters).
    """
    from keras import ops

    from leaf_keras import frontend

    frontends = (
        ("LEAF", frontend.Leaf()),
        ("Mel filterbanks", frontend.MelFilterbanks()),
        ("Time-Domain Filterbanks", frontend.TimeDomainFilterbanks()),
        ("SincNet", frontend.SincNet()),
        ("SincNet+", frontend.SincNetPlus()),
    )
    batch = waveform[None, :]
    return [
        (title, ops.convert_to_numpy(layer(batch, training=False))[0]) for title, layer in frontends
    ]


def plot(waveform, outputs, output_path):
    """Draws the waveform and every representation, one row each, and saves a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(outputs) + 1, 1, figsize=(8, 2.0 * (len(outputs) + 1)), constrained_layout=True
    )
    duration = len(waveform) / SAMPLE_RATE
    axes[0].plot(np.arange(len(waveform)) / SAMPLE_RATE, waveform, linewidth=0.5, color="k")
    axes[0].set_xlim(0.0, duration)
    axes[0].set_title("Waveform")
    axes[0].set_ylabel("amplitude")
    for axis, (title, features) in zip(axes[1:], outputs):
        # Per-panel colour range: the frontends' compressions have different scales.
        low, high = np.percentile(features, [1, 99])
        image = axis.imshow(
            features.T,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=low,
            vmax=high,
            extent=(0.0, duration, 0, features.shape[1]),
            interpolation="nearest",
        )
        axis.set_title(f"{title}  ({features.shape[0]} frames x {features.shape[1]} filters)")
        axis.set_ylabel("filter")
        figure.colorbar(image, ax=axis, pad=0.01)
    axes[-1].set_xlabel("time (s)")
    figure.savefig(output_path, dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", default=DEFAULT_AUDIO, help="mono 16 kHz 16-bit WAV file")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="PNG file to write")
    args = parser.parse_args(argv)
    waveform = read_wav(args.audio)
    plot(waveform, frontend_outputs(waveform), args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
