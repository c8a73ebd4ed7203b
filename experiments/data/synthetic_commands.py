"""`synthetic_commands`: a small keyword-like dataset generated procedurally, offline.

Ten classes of 1 s, 16 kHz sounds that differ in spectro-temporal pattern, each with
random pitch, timing, duration and level and a background of white or pink noise
at a random signal-to-noise ratio, so a classifier has to learn the pattern, not a
single frequency bin or a level. Generation is deterministic (every clip's random
generator is seeded from (seed, split, index)) and takes a couple of seconds, so the
README quickstart trains on a fresh machine with no download.

Configs: "default" (500 train, 100 validation, 100 test clips, balanced) and
"tiny" (40 / 20 / 20) for tests; "family" and "family_tiny" are the same clips with a
coarser label (tone, noise, harmonic, clicks), a second task on the same audio for
multi-task training.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from experiments.data import tfds_tasks

SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE
CLASS_NAMES = (
    "rising_chirp",  # exponential sweep up
    "falling_chirp",  # exponential sweep down
    "double_beep",  # two short tones separated by a gap
    "tremolo_tone",  # tone with 5-12 Hz amplitude modulation
    "low_noise_burst",  # band-limited noise around 200-900 Hz
    "high_noise_burst",  # band-limited noise around 3-6 kHz
    "low_harmonics",  # harmonic stack, f0 90-160 Hz
    "high_harmonics",  # harmonic stack, f0 330-520 Hz
    "slow_clicks",  # click train, 3-7 clicks per second
    "fast_clicks",  # click train, 20-35 clicks per second
)
# A coarser label of the same clips, for multi-task training (like NSynth's instrument
# family beside its instrument): how each class makes its sound.
FAMILY_NAMES = ("tone", "noise", "harmonic", "clicks")
CLASS_FAMILY = (0, 0, 0, 0, 1, 1, 2, 2, 3, 3)  # the family of each of CLASS_NAMES
LABEL_NAMES = {"event": CLASS_NAMES, "family": FAMILY_NAMES}
SPLIT_INDEX = {"train": 0, "validation": 1, "test": 2}
DEFAULT_SEED = 1234
FADE_SAMPLES = SAMPLE_RATE // 200  # 5 ms


def _envelope(num_samples: int) -> np.ndarray:
    """Flat envelope with 5 ms raised-cosine fades (no onset clicks)."""
    env = np.ones(num_samples)
    fade = min(FADE_SAMPLES, num_samples // 2)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
    env[:fade] = ramp
    env[num_samples - fade :] = ramp[::-1]
    return env


def _band_noise(rng, num_samples: int, low_hz: float, high_hz: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.fft.rfftfreq(num_samples, 1.0 / SAMPLE_RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0.0
    return np.fft.irfft(spectrum, num_samples)


def _pink_noise(rng, num_samples: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.fft.rfftfreq(num_samples, 1.0 / SAMPLE_RATE)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, num_samples)


def _event(label: int, rng) -> np.ndarray:
    """The foreground sound of class `label` (unit-ish amplitude, variable length)."""
    name = CLASS_NAMES[label]
    if name in ("rising_chirp", "falling_chirp"):
        duration = rng.uniform(0.3, 0.6)
        t = np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
        low, high = rng.uniform(250, 600), rng.uniform(1500, 3500)
        start, end = (low, high) if name == "rising_chirp" else (high, low)
        rate = np.log(end / start) / duration
        phase = 2 * np.pi * start * (np.exp(rate * t) - 1) / rate
        return np.sin(phase) * _envelope(len(t))
    if name == "double_beep":
        freq = rng.uniform(700, 1800)
        beep = int(rng.uniform(0.08, 0.14) * SAMPLE_RATE)
        gap = int(rng.uniform(0.08, 0.2) * SAMPLE_RATE)
        tone = np.sin(2 * np.pi * freq * np.arange(beep) / SAMPLE_RATE) * _envelope(beep)
        return np.concatenate([tone, np.zeros(gap), tone])
    if name == "tremolo_tone":
        duration = rng.uniform(0.5, 0.8)
        t = np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
        freq, mod = rng.uniform(500, 2000), rng.uniform(5, 12)
        am = 0.55 + 0.45 * np.sin(2 * np.pi * mod * t + rng.uniform(0, 2 * np.pi))
        return np.sin(2 * np.pi * freq * t) * am * _envelope(len(t))
    if name in ("low_noise_burst", "high_noise_burst"):
        num = int(rng.uniform(0.2, 0.5) * SAMPLE_RATE)
        if name == "low_noise_burst":
            centre, width = rng.uniform(350, 650), rng.uniform(150, 300)
        else:
            centre, width = rng.uniform(3800, 5000), rng.uniform(700, 1200)
        noise = _band_noise(rng, num, centre - width, centre + width)
        return noise / (np.abs(noise).max() + 1e-9) * _envelope(num)
    if name in ("low_harmonics", "high_harmonics"):
        duration = rng.uniform(0.3, 0.6)
        t = np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
        f0 = rng.uniform(90, 160) if name == "low_harmonics" else rng.uniform(330, 520)
        vibrato = 1.0 + 0.01 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
        phase = 2 * np.pi * f0 * np.cumsum(vibrato) / SAMPLE_RATE
        wave = sum(np.sin(k * phase) / k for k in range(1, 9) if k * f0 < 7000)
        return wave / np.abs(wave).max() * _envelope(len(t))
    # Click trains: short decaying clicks at a jittered regular rate.
    duration = rng.uniform(0.6, 0.9)
    num = int(duration * SAMPLE_RATE)
    rate = rng.uniform(3, 7) if name == "slow_clicks" else rng.uniform(20, 35)
    out = np.zeros(num)
    click = np.exp(-np.arange(48) / 8.0) * rng.choice([-1.0, 1.0], 48)
    position = rng.uniform(0, SAMPLE_RATE / rate)
    while position + len(click) < num:
        index = int(position)
        out[index : index + len(click)] += click
        position += SAMPLE_RATE / rate * rng.uniform(0.85, 1.15)
    return out


def synthesize_clip(label: int, rng) -> np.ndarray:
    """One 1 s clip of class `label`: jittered event in noise, int16 [16000]."""
    event = _event(label, rng)[:CLIP_SAMPLES]
    clip = np.zeros(CLIP_SAMPLES)
    onset = rng.integers(0, CLIP_SAMPLES - len(event) + 1)
    clip[onset : onset + len(event)] = event
    event_rms = np.sqrt(np.mean(event**2)) + 1e-9
    noise = (
        _pink_noise(rng, CLIP_SAMPLES) if rng.random() < 0.5 else rng.standard_normal(CLIP_SAMPLES)
    )
    snr_db = rng.uniform(3.0, 20.0)
    noise *= event_rms / (np.sqrt(np.mean(noise**2)) + 1e-9) / 10 ** (snr_db / 20)
    clip += noise
    peak_dbfs = rng.uniform(-30.0, -3.0)
    clip *= 10 ** (peak_dbfs / 20) / (np.abs(clip).max() + 1e-9)
    return np.round(clip * 32767).astype(np.int16)


def synthesize_recording(labels, rng, gap_seconds=1.0, snr_db=20.0, peak_dbfs=-6.0):
    """A recording of the events of `labels` one after the other, separated by noise.

    What a streaming detector is tested on (`experiments.stream`): each event of
    `_event` is followed by `gap_seconds` of pink noise, which runs through the
    whole recording at `snr_db` below the events' mean level; the recording starts
    with a gap too.

    Args:
        labels: class indices of the events, in order.
        rng: a numpy Generator.
        gap_seconds: noise between two events (and before the first and after the last).
        snr_db: events' RMS over the noise's RMS, in dB.
        peak_dbfs: the recording's peak level.

    Returns:
        (int16 samples [time], [(centre_seconds, label)] of each event). An event's
        centre is the middle of its sound, from its first to its last non-zero
        sample: a click train's buffer starts and ends with silence of up to a
        click period, which no detector can place.
    """
    gap = int(gap_seconds * SAMPLE_RATE)
    pieces, events, position = [np.zeros(gap)], [], gap
    for label in labels:
        event = _event(int(label), rng)
        sounding = np.flatnonzero(event)
        middle = (sounding[0] + sounding[-1] + 1) / 2 if len(sounding) else len(event) / 2
        events.append(((position + middle) / SAMPLE_RATE, int(label)))
        pieces += [event / (np.sqrt(np.mean(event**2)) + 1e-9), np.zeros(gap)]
        position += len(event) + gap
    recording = np.concatenate(pieces)
    noise = _pink_noise(rng, len(recording))
    recording += noise / (np.sqrt(np.mean(noise**2)) + 1e-9) / 10 ** (snr_db / 20)
    recording *= 10 ** (peak_dbfs / 20) / np.abs(recording).max()
    return np.round(recording * 32767).astype(np.int16), events


def generate_split(split: str, num_examples: int, seed: int = DEFAULT_SEED, labels="event"):
    """Generates a split: (audio int16 [N, 16000], labels int64 [N]), classes balanced.

    Every clip depends only on (seed, split, index), so the output is identical
    across runs, machines and numbers of examples.

    Args:
        split: "train", "validation" or "test".
        num_examples: number of clips.
        seed: the dataset's seed.
        labels: "event" (`CLASS_NAMES`) or "family" (`FAMILY_NAMES`, the same clips'
            coarser label).
    """
    if split not in SPLIT_INDEX:
        raise ValueError(f"Unknown split {split!r}; expected one of {tuple(SPLIT_INDEX)}.")
    if labels not in LABEL_NAMES:
        raise ValueError(f"labels must be one of {tuple(LABEL_NAMES)}, got {labels!r}.")
    events = np.arange(num_examples) % len(CLASS_NAMES)
    audio = (
        np.stack(
            [
                synthesize_clip(
                    int(label), np.random.default_rng([seed, SPLIT_INDEX[split], index])
                )
                for index, label in enumerate(events)
            ]
        )
        if num_examples
        else np.zeros((0, CLIP_SAMPLES), np.int16)
    )
    if labels == "family":
        return audio, np.asarray(CLASS_FAMILY, np.int64)[events]
    return audio, events.astype(np.int64)


@dataclasses.dataclass
class SyntheticCommandsConfig(tfds.core.BuilderConfig):
    """Split sizes and seed of a `synthetic_commands` variant."""

    num_train: int = 500
    num_validation: int = 100
    num_test: int = 100
    seed: int = DEFAULT_SEED
    labels: str = "event"


class SyntheticCommands(tfds_tasks.PackageBuilder, tfds.core.GeneratorBasedBuilder):
    """Procedurally generated 10-class sound-event dataset (no download)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        SyntheticCommandsConfig(name="default", description="500/100/100 clips."),
        SyntheticCommandsConfig(
            name="tiny",
            description="40/20/20 clips, for tests.",
            num_train=40,
            num_validation=20,
            num_test=20,
        ),
        SyntheticCommandsConfig(
            name="family",
            description="The default clips labelled by their family (tone, noise, ...).",
            labels="family",
        ),
        SyntheticCommandsConfig(
            name="family_tiny",
            description="The tiny clips labelled by their family, for tests.",
            num_train=40,
            num_validation=20,
            num_test=20,
            labels="family",
        ),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "audio": tfds.features.Audio(
                        shape=(CLIP_SAMPLES,), dtype=np.int16, sample_rate=SAMPLE_RATE
                    ),
                    "label": tfds.features.ClassLabel(
                        names=LABEL_NAMES[self.builder_config.labels]
                    ),
                }
            ),
            supervised_keys=("audio", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download.
        config = self.builder_config
        return {
            "train": self._generate_examples("train", config.num_train),
            "validation": self._generate_examples("validation", config.num_validation),
            "test": self._generate_examples("test", config.num_test),
        }

    def _generate_examples(self, split: str, num_examples: int):
        config = self.builder_config
        audio, labels = generate_split(split, num_examples, config.seed, config.labels)
        for index in range(num_examples):
            yield f"{split}_{index:05d}", {"audio": audio[index], "label": int(labels[index])}
