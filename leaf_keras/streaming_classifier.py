"""A classifier on a stream: the last `window_seconds` of frames, classified every hop.

`StreamingClassifier(classifier)` runs the frontend of a trained `AudioClassifier` as a
`leaf_keras.streaming` stream and keeps, in its state, the pooled energies of the last
`window_seconds` of frames. Each `step(chunk, state)` appends the frames that the chunk
completes and classifies the window with `classifier.classify_features`, so a keyword
spotter scores the last second every 10–100 ms.

Why energies and not features. A classifier trained on clips sees each clip compressed
from its own start (PCEN's smoother starts at the clip's first frame) and, in the
usual recipes, scaled to a fixed loudness. The window is therefore kept before the
frame stages: every step compresses the window from its first frame, as the offline
frontend does at the start of a clip, after scaling it by the loudness gain of the
window's samples. That gain is exact on the energies: the convolutions and poolings are
linear (or max poolings) and the activation is homogeneous, so the energies of `g · x`
are `g ** energy_degree` times those of `x` (`FrontendStream.energy_degree`: 2 for
LEAF's squared modulus and mel power).

What a window is. After N samples the stream has emitted `E = max(0, (N - latency) //
stride)` frames (`emitted_frames(N)`); the window holds frames `E - window_frames ..
E - 1`, the frames of the samples `[(E - window_frames) · stride, E · stride)`. Before
the stream has that many, the window starts with frames of zero energy (silence, as if
the stream had been silent before). The window's frames are those of the
continuous recording. They equal the frames of the window cut out as a clip except near
its two edges, where the clip would have the frontend's zero padding: the first
`ceil(latency / stride)` or so frames and the last ones.
"""

from keras import ops

from leaf_keras import models
from leaf_keras import streaming


def _db_to_linear(db):
    return 10.0 ** (db / 20.0)


class StreamingClassifier:
    """Classifies the last `window_seconds` of a stream at every step.

    Args:
        classifier: a built `AudioClassifier` whose frontend streams
            (`leaf_keras.streaming.stream` accepts it: an exact filterbank
            engine, no `mean_var_norm` or `spec_augment`).
        window_seconds: how much audio each classification sees; the training
            clip length is the natural choice. `window_seconds * sample_rate`
            must be a multiple of the frontend's stride.
        sample_rate: the stream's sample rate in Hz (the frontend's own, when it
            has one).
        loudness_normalization: None (no scaling), or a dict with `target_db`
            and `max_gain_db`: each window is scaled as a clip of its samples
            would be, by `min(10**(max_gain_db/20), 10**(target_db/20) /
            (std + 1e-9))` with the population standard deviation of the
            window's samples (the rule of the original LEAF pipeline, used by
            `experiments`' `loudness_normalization`).

    Attributes:
        stream: the `FrontendStream` (of pooled energies) of the frontend.
        stride: samples per frame; chunks are multiples of it.
        latency: the stream's look-ahead in samples (`FrontendStream.latency`).
        window_frames: frames per window.

    Example:
        >>> classifier = leaf_keras.AudioClassifier(num_outputs=10)
        >>> classifier.build((None, 16000))
        >>> spotter = StreamingClassifier(classifier, window_seconds=1.0)
        >>> state = spotter.initial_state(batch_size=1)
        >>> logits, state = spotter.step(np.zeros((1, 1600), "float32"), state)
        >>> logits.shape  # (1, 10): the last second, every 100 ms.
    """

    def __init__(
        self, classifier, window_seconds=1.0, sample_rate=None, loudness_normalization=None
    ):
        if not isinstance(classifier, models.AudioClassifier):
            raise ValueError(
                f"StreamingClassifier takes a leaf_keras.AudioClassifier, got {classifier!r}."
            )
        frontend = classifier.frontend
        if sample_rate is None:
            sample_rate = getattr(frontend, "sample_rate", None)
        if sample_rate is None or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}.")
        frontend_rate = getattr(frontend, "sample_rate", None)
        if frontend_rate is not None and frontend_rate != sample_rate:
            raise ValueError(
                f"The stream's sample rate ({sample_rate} Hz) is not the frontend's "
                f"({frontend_rate} Hz); resample the audio to {frontend_rate} Hz."
            )
        self.classifier = classifier
        self.stream = streaming.stream(frontend, compressed=False)
        self.stride = self.stream.stride
        self.latency = self.stream.latency
        self.sample_rate = sample_rate
        window_samples = window_seconds * sample_rate
        if window_seconds <= 0 or abs(window_samples - round(window_samples)) > 1e-6:
            raise ValueError(
                f"window_seconds={window_seconds!r} must be a positive whole number of samples "
                f"at {sample_rate} Hz."
            )
        window_samples = int(round(window_samples))
        if window_samples % self.stride:
            raise ValueError(
                f"window_seconds={window_seconds} is {window_samples} samples, not a multiple of "
                f"the frontend's stride ({self.stride} samples)."
            )
        self.window_seconds = window_seconds
        self.window_frames = window_samples // self.stride
        self.loudness_normalization = None
        if loudness_normalization is not None:
            unknown = set(loudness_normalization) - {"target_db", "max_gain_db"}
            if unknown:
                raise ValueError(
                    "loudness_normalization takes target_db and max_gain_db, got "
                    f"{sorted(unknown)}."
                )
            if self.stream.energy_degree is None:
                raise ValueError(
                    f"{frontend.name}: loudness_normalization scales the window's energies by a "
                    "power of the gain, and the activation "
                    f"{type(frontend.filterbank.activation).__name__} is not known to be "
                    "homogeneous; pass loudness_normalization=None."
                )
            self.loudness_normalization = {
                "target_db": float(loudness_normalization.get("target_db", 15.0)),
                "max_gain_db": float(loudness_normalization.get("max_gain_db", 30.0)),
            }

    def initial_state(self, batch_size):
        """The state of streams that have received nothing (preceded by silence).

        Returns:
            A dict: `frontend` (the `FrontendStream` state), `energies`
            `[batch, window_frames, n_filters]` (the window), `window_power` and
            `pending_power` `[batch, hops, 2]` (sum and sum of squares of the
            samples of each hop in the window, and of the hops whose frames are
            not emitted yet).
        """
        frontend = self.stream.initial_state(batch_size)
        dtype = self.stream.dtype
        return {
            "frontend": frontend,
            "energies": ops.zeros((batch_size, self.window_frames, self.stream.n_filters), dtype),
            "window_power": ops.zeros((batch_size, self.window_frames, 2), dtype),
            "pending_power": ops.zeros((batch_size, 0, 2), dtype),
        }

    def emitted_frames(self, num_samples):
        """Frames emitted after `num_samples` samples: the window ends with frame
        `emitted_frames(N) - 1`, i.e. at sample `emitted_frames(N) * stride`."""
        return self.stream.emitted_frames(num_samples)

    def window_end_seconds(self, num_samples):
        """Where the window classified after `num_samples` samples ends, in seconds
        of the stream (it starts `window_seconds` earlier)."""
        return self.emitted_frames(num_samples) * self.stride / self.sample_rate

    def step(self, chunk, state):
        """Consumes a chunk and classifies the window that ends with its frames.

        Args:
            chunk: float `[batch, n * stride]` (or `[batch, n * stride, 1]`).
            state: from `initial_state` or the last step.

        Returns:
            `(logits, state)`: the classifier's logits `[batch, num_outputs]` (a
            dict `{task: logits}` for a multi-task classifier) of the window.

        Raises:
            ValueError: for a chunk or state that the stream refuses (wrong
                rank, length, dtype, batch size, another stream's state).
        """
        if not isinstance(state, dict) or set(state) != set(self._state_keys):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"StreamingClassifier.step expects a state with keys {sorted(self._state_keys)} "
                f"(from initial_state), got {got}."
            )
        chunk = self.stream.check_chunk(chunk)
        energies, frontend_state = self.stream.step(chunk, state["frontend"])
        emitted = energies.shape[1]
        dtype = state["energies"].dtype
        window = ops.concatenate([state["energies"], ops.cast(energies, dtype)], axis=1)
        window = window[:, -self.window_frames :]
        power, pending = self._hop_power(chunk, state, emitted)
        features = self.stream.compress(self._scaled(window, power))
        logits = self.classifier.classify_features(features, training=False)
        new_state = {
            "frontend": frontend_state,
            "energies": window,
            "window_power": power,
            "pending_power": pending,
        }
        return logits, new_state

    _state_keys = ("frontend", "energies", "window_power", "pending_power")

    def _hop_power(self, chunk, state, emitted):
        """The per-hop sums of the window's samples, and of the hops still pending.

        Frames are emitted `latency` samples after their hop: a hop's sums wait in
        `pending_power` until its frame enters the window, so the gain is that of
        the samples of the window's frames.
        """
        dtype = state["window_power"].dtype
        samples = ops.cast(chunk, dtype)
        hops = ops.reshape(samples, (samples.shape[0], -1, self.stride))
        sums = ops.stack([ops.sum(hops, axis=-1), ops.sum(ops.square(hops), axis=-1)], axis=-1)
        pending = ops.concatenate([state["pending_power"], sums], axis=1)
        window = ops.concatenate([state["window_power"], pending[:, :emitted]], axis=1)
        return window[:, -self.window_frames :], pending[:, emitted:]

    def _scaled(self, energies, power):
        if self.loudness_normalization is None:
            return energies
        count = self.window_frames * self.stride
        mean = ops.sum(power[..., 0], axis=1) / count
        variance = ops.maximum(ops.sum(power[..., 1], axis=1) / count - ops.square(mean), 0.0)
        std = ops.sqrt(variance) + 1e-9
        settings = self.loudness_normalization
        gain = ops.minimum(
            _db_to_linear(settings["max_gain_db"]), _db_to_linear(settings["target_db"]) / std
        )
        scale = ops.power(gain, float(self.stream.energy_degree))
        return energies * ops.cast(scale, energies.dtype)[:, None, None]
