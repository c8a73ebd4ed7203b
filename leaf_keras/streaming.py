"""Streaming form of the frontends: chunks in, frames out, the same frames.

`stream(frontend)` wraps a built or unbuilt frontend (`Leaf`,
`TimeDomainFilterbanks`, `SincNet`, `SincNetPlus` with any filterbank
engine, `MelFilterbanks`, `MelPCEN`) in a
`FrontendStream`. Its `step` takes chunks of any multiple of the stride and
returns the frames whose whole window has been received; `flush` returns
the frames that the offline frontend computes with its right zero padding.
Concatenated, they are the offline frames `frontend(x)` up to float32
round-off.

Every stage keeps what its next outputs still need, explicitly, in the state:

- a stride-1 SAME convolution (pre-emphasis, the filterbank's convolution)
  keeps the last `kernel_size - 1` inputs. Its state starts with the
  `(kernel_size - 1) // 2` zeros of its SAME left padding (TensorFlow's rule,
  `ops.padding`), so its first outputs are those of the padded signal; the
  stage then runs VALID on `buffer + chunk`.
- the pooling keeps the activations of the frames it has not finished,
  starting with its SAME left padding (`padded_layout`; constant when the
  length is a multiple of the stride): zeros, or -inf for a max pooling. It
  pools VALID at the stride (`pool_padded_channels_major`).
- PCEN carries its smoother `s_{t-1}` and whether a frame was seen: offline,
  the smoother starts from the first frame (`s_{-1} = x_0`), so the first
  frame of the stream is used as its initial state.
- the mel frontends keep the samples of the frames not yet complete (their
  frames are not centred, `tf.signal.frame(pad_end=True)`).

Each stage emits everything its inputs allow, so the state after N samples
depends on N only, not on how the stream was cut. Every count is a Python
int computed from static shapes: `step` runs under `jax.jit` /
`tf.function` for a fixed chunk size. The buffers grow while the stream
warms up (until the first frame, a few hundred samples) and then keep one
shape, so a compiled step traces once per warm-up step and once for the rest.

The band-limited engine (`filterbank="band_limited"`) streams on the block
grid of the offline layer (`_BandLimitedEngine`): its frames come one block
at a time and its buffers cycle with the blocks. A pre-emphasis streams in
front of either engine (`_PreemphasisEngine`).

Frontends that normalize over the whole clip (`mean_var_norm=True`,
`spec_augment=True`) and stages this module does not know are refused with
a ValueError naming the stage.
"""

import keras
from keras import ops

from leaf_keras import band_limited as band_limited_lib
from leaf_keras import band_plan
from leaf_keras import filterbank as filterbank_lib
from leaf_keras import frontend as frontend_lib
from leaf_keras import mel_frontend
from leaf_keras import postprocessing
from leaf_keras import spec_augment
from leaf_keras import stages
from leaf_keras import waveforms
from leaf_keras.ops import block_pooling
from leaf_keras.ops import padding as padding_lib
from leaf_keras.ops import precision

# Safety bound of the warm-up simulation (`_reachable_lengths`); a stream
# reaches its steady buffer lengths after about latency / stride strides.
_MAX_WARMUP_STRIDES = 100_000


def stream(frontend, compressed=True):
    """The streaming form of `frontend`.

    Args:
        frontend: a `Leaf` (or `TimeDomainFilterbanks`, `SincNet`,
            `SincNetPlus`) with any filterbank engine, or a
            `MelFilterbanks` / `MelPCEN`; built or not (it is built here).
        compressed: False emits the pooled energies, before the stages that
            follow the pooling (energy floor, compression); `compress` applies
            those to a clip of them.

    Returns:
        A `FrontendStream`.

    Raises:
        ValueError: if a stage of `frontend` cannot run on a stream exactly
            (the message names it and says why).

    Example:
        >>> leaf = leaf_keras.Leaf()
        >>> s = stream(leaf)
        >>> state = s.initial_state(batch_size=1)
        >>> frames, state = s.step(np.zeros((1, 1600), "float32"), state)
        >>> frames.shape  # (1, 7, 40): (1600 - 321) // 160 frames are complete.
        >>> tail, state = s.flush(state)
        >>> tail.shape  # (1, 3, 40): 10 frames in all, as leaf(x) gives.
    """
    return FrontendStream(frontend, compressed)


class FrontendStream:
    """A frontend that consumes chunks and emits frames as they complete.

    `step(chunk, state)` takes `[batch, n * stride]` (or `[batch, n *
    stride, 1]`) samples and returns the frames whose window is complete,
    `[batch, new_frames, n_filters]`; `flush(state)` returns the last frames,
    computed with the offline frontend's right padding. The state is a dict of
    tensors, created by `initial_state` and returned by every call.

    Latency. `latency` is the look-ahead in samples: frame f, the frame of
    samples `[f * stride, (f + 1) * stride)`, is emitted once `latency`
    samples after that hop have arrived. After N samples (a multiple of the
    stride) `max(0, (N - latency) // stride)` frames have been emitted, and
    `flush` emits the last `ceil(latency / stride)`. It is the sum of what
    each stage reads past the end of the hop:

    - a stride-1 SAME convolution of K taps reads `K - 1 - (K - 1) // 2`
      samples past the output's position (TensorFlow's rule puts the extra
      tap of an even K on the right): 200 for the 401-tap filterbank, 1
      for the 2-tap pre-emphasis;
    - a pooling of K taps at stride s with SAME padding pads `left = (K - s)
      // 2` (pad_total = K - s, the length being a multiple of s), so frame f
      reads activations `f s - left .. f s - left + K - 1`, i.e. `K - s -
      left` past the end of its hop: 401 - 160 - 120 = 121 (VALID: K - s =
      241);
    - a mel frame reads samples `f s .. f s + K - 1`, `K - s` = 241 past its
      hop.

    At 16 kHz with the defaults: `Leaf`, `SincNet`, `SincNetPlus` 200 + 121
    = 321 samples (20.06 ms; 322 with `preemp=True`),
    `TimeDomainFilterbanks` 200 + 241 = 441 (27.56 ms), `MelFilterbanks` and
    `MelPCEN` 241 (15.06 ms). Frames are emitted at the end of a chunk,
    so a frame waits `ceil(latency / stride)` strides (3 for 321) after its
    hop at most.

    Attributes:
        frontend: the wrapped frontend.
        stride: samples per frame (the chunk length is a multiple of it).
        latency: look-ahead in samples (see above).
        n_filters: channels of the frames.
        dtype: the dtype of the state and of the computation (float32, or
            float64 for a float64 frontend).
        compressed: whether the frames are the frontend's features (True) or
            its pooled energies (False).
        energy_degree: the energies of `g * x` are `g ** energy_degree` times
            those of `x` for g > 0 (2 for a squared modulus or mel power, 1 for
            a (leaky) ReLU); None for an activation not known to be
            homogeneous.

    Example:
        >>> s = FrontendStream(leaf_keras.MelPCEN())
        >>> state = s.initial_state(2)
        >>> for chunk in np.split(x, 10, axis=1):  # x: [2, 16000]
        ...     frames, state = s.step(chunk, state)
        >>> frames, state = s.flush(state)
    """

    def __init__(self, frontend, compressed=True):
        if isinstance(frontend, frontend_lib.Leaf):
            band_limited = _band_limited_stages(frontend)
            if band_limited is not None:
                self._engine = _BandLimitedEngine(frontend, *band_limited, compressed)
            else:
                self._engine = _FilterbankEngine(frontend, compressed)
            if frontend.preemp_conv is not None:
                self._engine = _PreemphasisEngine(frontend, self._engine)
        elif isinstance(frontend, mel_frontend.MelFilterbanks):
            self._engine = _MelEngine(frontend, compressed)
        else:
            raise ValueError(
                "stream() takes a leaf_keras frontend (Leaf, TimeDomainFilterbanks, SincNet, "
                f"SincNetPlus, MelFilterbanks, MelPCEN), got {frontend!r}."
            )
        self.frontend = frontend
        self.stride = self._engine.stride
        self.latency = self._engine.latency
        self.n_filters = self._engine.n_filters
        self.compressed = bool(compressed)
        self.energy_degree = self._engine.energy_degree
        self.dtype = precision.working_dtype(frontend)
        self._lengths = _reachable_lengths(self._engine)

    def initial_state(self, batch_size):
        """The state of a stream that has received nothing.

        Args:
            batch_size: number of streams processed together.

        Returns:
            A dict of tensors, each with `batch_size` rows: the buffers of the
            stages (`*_buffer`, starting with their SAME left padding) and,
            with PCEN, its smoother and a "seen a frame" flag.

        Raises:
            ValueError: if `batch_size` is not a positive integer.
        """
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        return self._engine.initial_state(int(batch_size), self.dtype)

    def step(self, chunk, state):
        """Consumes a chunk and returns the frames it completes.

        Args:
            chunk: float tensor `[batch, n * stride]` or `[batch, n * stride,
                1]`, n >= 1.
            state: the state returned by `initial_state` or the last call.

        Returns:
            `(frames, state)`: frames `[batch, new_frames, n_filters]`
            (new_frames may be 0 while the stream warms up) and the new state.

        Raises:
            ValueError: for a chunk of the wrong rank, channels, dtype or
                length, or a state that is not one of this stream for this
                batch size.
        """
        chunk = self._check_chunk(chunk)
        self._check_state(state, batch_size=chunk.shape[0])
        return self._engine.step(ops.cast(chunk, self.dtype), state)

    def flush(self, state):
        """Ends the stream: the frames that need the right zero padding.

        Args:
            state: the state returned by the last `step`.

        Returns:
            `(frames, state)`: the last `ceil(latency / stride)` frames of a
            stream of at least that many strides (fewer for a shorter one),
            and a fresh initial state for the next stream.

        Raises:
            ValueError: for a state that is not one of this stream.
        """
        batch_size = self._check_state(state)
        frames = self._engine.flush(state)
        return frames, self.initial_state(batch_size)

    def emitted_frames(self, num_samples):
        """How many frames the stream has emitted after `num_samples` samples (a
        multiple of the stride): `max(0, (N - latency) // stride)`, or for the
        band-limited engine, whose frames come one block at a time, those of
        the blocks complete."""
        if hasattr(self._engine, "emitted_frames"):
            return self._engine.emitted_frames(num_samples)
        return max(0, (int(num_samples) - self.latency) // self.stride)

    def compress(self, energies):
        """The frame stages of the frontend (energy floor, compression) applied
        to a whole clip of energies, as the offline frontend applies them.

        With `compressed=False` the stream emits the pooled energies: a
        caller that rescales or windows them (`StreamingClassifier`) compresses
        them here. PCEN starts its smoother from the first frame given, as it
        does offline at the start of a clip.

        Args:
            energies: `[batch, frames, n_filters]`, frames of this stream with
                `compressed=False`.

        Returns:
            The frontend's features `[batch, frames, n_filters]`.
        """
        stages_ = self._engine.compression
        state = stages_.initial_state(energies.shape[0], self.n_filters, self.dtype)
        features, _ = stages_(ops.cast(energies, self.dtype), state)
        return features

    def check_chunk(self, chunk):
        """`chunk` as `[batch, n * stride]` samples, or a ValueError naming what
        is wrong with it (rank, channels, dtype, length, unknown batch size)."""
        return self._check_chunk(chunk)

    def _check_chunk(self, chunk):
        if not hasattr(chunk, "shape") or not hasattr(chunk, "dtype"):
            chunk = ops.convert_to_tensor(chunk)
        name = f"stream({self.frontend.name}).step"
        waveforms.check_waveforms(chunk.shape, chunk.dtype, 1, name)
        if len(chunk.shape) == 3:
            chunk = chunk[:, :, 0]
        length = chunk.shape[1]
        if length is None or length % self.stride:
            raise ValueError(
                f"{name} takes chunks of a positive multiple of the stride ({self.stride} "
                f"samples), got a chunk of shape {tuple(chunk.shape)} ({length} samples)."
            )
        if chunk.shape[0] is None:
            raise ValueError(f"{name} needs a static batch size, got shape {tuple(chunk.shape)}.")
        return chunk

    def _check_state(self, state, batch_size=None):
        """Raises ValueError unless `state` is a state of this stream; returns
        its batch size."""
        name = f"stream({self.frontend.name})"
        expected = self._engine.state_keys
        if not isinstance(state, dict) or set(state) != set(expected):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"{name} expects a state with keys {sorted(expected)} (from its initial_state), "
                f"got {got}."
            )
        shapes = {key: tuple(state[key].shape) for key in expected}
        batch_sizes = {shape[0] for shape in shapes.values()}
        if len(batch_sizes) != 1:
            raise ValueError(f"{name}: the state's tensors disagree on the batch size: {shapes}.")
        (state_batch,) = batch_sizes
        if batch_size is not None and state_batch != batch_size:
            raise ValueError(
                f"{name} got a chunk of batch size {batch_size} and a state of batch size "
                f"{state_batch}; start a state with initial_state({batch_size})."
            )
        for key, channels in self._engine.state_channels.items():
            if shapes[key][1:] != channels and shapes[key][2:] != channels:
                raise ValueError(
                    f"{name}: state[{key!r}] has shape {shapes[key]}, expected channels "
                    f"{channels} (n_filters={self.n_filters}); it is the state of another "
                    "stream."
                )
        lengths = tuple(shapes[key][1] for key in self._engine.buffer_keys)
        if lengths not in self._lengths:
            raise ValueError(
                f"{name}: the state's buffers {dict(zip(self._engine.buffer_keys, lengths))} "
                f"hold sample counts that this stream never reaches (expected one of "
                f"{sorted(self._lengths)} for {self._engine.buffer_keys}); it is the state of "
                "another stream or frontend."
            )
        return state_batch


def _band_limited_stages(frontend):
    """`(layer, later stages)` of a frontend whose filterbank is a
    `BandLimitedGaborPooling`, else None."""
    if not frontend.built:
        frontend.build((None, None))
    stages_ = [
        layer
        for layer in frontend.layers
        if not isinstance(layer, waveforms.WaveformInput) and layer is not frontend.preemp_conv
    ]
    for index, layer in enumerate(stages_):
        if isinstance(layer, band_limited_lib.BandLimitedGaborPooling):
            if index:
                raise ValueError(
                    f"{frontend.name}: unknown stage {stages_[0].name!r} before the "
                    "band-limited filterbank."
                )
            return layer, stages_[1:]
    return None


def _reachable_lengths(engine):
    """The buffer lengths of every state the stream can reach.

    They depend only on the number of samples received (each stage emits
    all it can), and once the stream is warm they stop changing (or, for the
    band-limited engine, cycle with its blocks): simulating one stride at a
    time until a length repeats lists them all.
    """
    lengths = engine.initial_lengths()
    reachable = {lengths}
    for _ in range(_MAX_WARMUP_STRIDES):
        following = engine.next_lengths(lengths, engine.stride)
        if following in reachable:
            return reachable
        reachable.add(following)
        lengths = following
    raise RuntimeError("The stream's buffers did not settle; please report this frontend.")


# Stride-1 SAME windows and strided poolings: how many outputs a buffer of
# `length` inputs completes (the stages run VALID on their buffers).


def _window_outputs(length, kernel_size):
    return max(length - kernel_size + 1, 0)


def _pool_frames(length, kernel_size, strides):
    return max((length - kernel_size) // strides + 1, 0) if length >= kernel_size else 0


def _right_padding(kernel_size):
    """Right padding of TensorFlow's stride-1 SAME rule."""
    return padding_lib.same_padding(kernel_size, kernel_size, 1)[1]


def _left_padding(kernel_size):
    return padding_lib.same_padding(kernel_size, kernel_size, 1)[0]


def _take(tensor, start, stop, axis=1):
    """Static slice of `tensor` along `axis`."""
    index = [slice(None)] * len(tensor.shape)
    index[axis] = slice(start, stop)
    return tensor[tuple(index)]


# How the pooled energies scale with the waveform: g·x gives g**degree times the
# energies of x (the convolutions and poolings are linear, or max poolings, and these
# activations are homogeneous). A StreamingClassifier needs it to normalize the
# loudness of a window from its samples' statistics.
_ENERGY_DEGREES = {
    stages.SquaredModulus: 2,
    keras.layers.LeakyReLU: 1,
    keras.layers.ReLU: 1,
}


class _FrameStages:
    """The per-frame stages after the pooling: energy floor, compression.

    Elementwise and per-frame layers (`EnergyFloor`, `LogCompression`,
    `LayerNormalization` over channels) are called as they are; `PCENLayer`
    runs its smoother from the carried state.
    """

    def __init__(self, layers, owner_name):
        self.layers = []
        self.pcen = None
        for layer in layers:
            if isinstance(layer, postprocessing.PCENLayer):
                if type(layer).call is not postprocessing.PCENLayer.call:
                    raise ValueError(
                        f"{owner_name}: {layer!r} overrides PCENLayer.call; its streaming form "
                        "is unknown."
                    )
                self.pcen = layer
            else:
                _check_per_frame(layer, owner_name)
                if self.pcen is not None:
                    raise ValueError(
                        f"{owner_name}: stage {layer.name!r} follows PCEN; only PCEN's smoother "
                        "is carried between chunks."
                    )
                self.layers.append(layer)

    @property
    def state_keys(self):
        return ("pcen_smoother", "pcen_started") if self.pcen is not None else ()

    def initial_state(self, batch_size, channels, dtype):
        if self.pcen is None:
            return {}
        return {
            "pcen_smoother": ops.zeros((batch_size, channels), dtype),
            "pcen_started": ops.zeros((batch_size,), "bool"),
        }

    def __call__(self, frames, state):
        """`(outputs, pcen_state)` of pooled energies `[batch, k, channels]`."""
        for layer in self.layers:
            frames = layer(frames)
        if self.pcen is None:
            return frames, {}
        return _pcen(self.pcen, frames, state)


def _check_per_frame(layer, owner_name):
    """Raises ValueError unless `layer` maps each frame on its own."""
    if isinstance(layer, postprocessing.InstanceNormalization):
        raise ValueError(
            f"{owner_name}: stage {layer.name!r} (InstanceNormalization, mean_var_norm=True) "
            "normalizes each channel over the whole clip, which a stream has not received; "
            "it cannot stream exactly. Build the frontend with mean_var_norm=False."
        )
    if isinstance(layer, spec_augment.SpecAugment):
        raise ValueError(
            f"{owner_name}: stage {layer.name!r} (SpecAugment, spec_augment=True) masks "
            "spans of the whole clip (a training augmentation); build the frontend with "
            "spec_augment=False to stream it."
        )
    if isinstance(layer, keras.layers.LayerNormalization):
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        if all(axis in (-1, 2) for axis in axes):
            return
        raise ValueError(
            f"{owner_name}: stage {layer.name!r} normalizes over axes {layer.axis}, not only "
            "over channels; it cannot stream exactly."
        )
    if isinstance(layer, (stages.EnergyFloor, postprocessing.LogCompression)):
        return
    raise ValueError(
        f"{owner_name}: stage {layer.name!r} ({type(layer).__name__}) is not known to act on "
        "each frame alone; streaming supports EnergyFloor, LogCompression, "
        "LayerNormalization over channels and PCENLayer after the pooling."
    )


def _pcen(pcen, frames, state):
    """PCEN of `frames` with the smoother carried from the previous frames.

    Offline the smoother starts from the first frame, `s_{-1} = x_0`, so until
    a frame has been seen that frame is the initial state.
    """
    inputs = ops.cast(frames, state["pcen_smoother"].dtype)
    started = state["pcen_started"][:, None]
    initial_state = ops.where(started, state["pcen_smoother"], inputs[:, 0, :])
    smoother = ops.cast(pcen.ema(inputs, initial_state=initial_state), inputs.dtype)
    outputs = pcen.compress(inputs, smoother)
    new_state = {
        "pcen_smoother": smoother[:, -1, :],
        "pcen_started": ops.ones_like(state["pcen_started"]),
    }
    return ops.cast(outputs, pcen.compute_dtype), new_state


def _check_stride_one_same(layer, what, owner_name):
    """Raises ValueError unless `layer` is a stride-1 SAME convolution, which a
    stream computes VALID on its buffer."""
    strides = layer.strides if isinstance(layer.strides, int) else layer.strides[0]
    if layer.padding != "same" or strides != 1:
        raise ValueError(
            f"{owner_name}: the {what} {layer.name!r} must be a stride-1 SAME convolution to "
            f"stream, got strides={layer.strides}, padding={layer.padding!r}."
        )


class _PreemphasisEngine:
    """The pre-emphasis (a stride-1 SAME convolution of the waveform) in front of
    the engine of the filterbank.

    It keeps its last `kernel_size - 1` samples and hands its outputs on, so the
    engine behind it streams the pre-emphasized signal, `right` samples (1 for
    the 2-tap filter, TensorFlow's SAME rule) behind the waveform; `flush` first
    hands on the outputs of the right padding. Both filterbank engines stream
    behind it: the band-limited one, whose blocks read the pre-emphasized
    signal, as well as the exact ones.
    """

    def __init__(self, frontend, engine):
        name = frontend.name
        self.preemp = frontend.preemp_conv
        _check_stride_one_same(self.preemp, "pre-emphasis", name)
        if tuple(self.preemp.dilation_rate) != (1,):
            raise ValueError(f"{name}: a dilated pre-emphasis cannot stream.")
        self.engine = engine
        (self.kernel,) = tuple(self.preemp.kernel_size)
        self.right = _right_padding(self.kernel)
        self.stride = engine.stride
        self.n_filters = engine.n_filters
        self.energy_degree = engine.energy_degree
        self.compression = engine.compression
        self.buffer_keys = ("preemp_buffer",) + engine.buffer_keys
        self.state_keys = ("preemp_buffer",) + engine.state_keys
        self.state_channels = engine.state_channels
        if hasattr(engine, "emitted_frames"):
            # Frames that come a block at a time: the worst wait, as for the engine.
            self.latency = _worst_latency(self.emitted_frames, self.stride, engine.block)
        else:
            self.latency = engine.latency + self.right

    def emitted_frames(self, num_samples):
        samples = max(0, int(num_samples) - self.right)
        if hasattr(self.engine, "emitted_frames"):
            return self.engine.emitted_frames(samples)
        return max(0, (samples - self.engine.latency) // self.stride)

    def initial_lengths(self):
        return (_left_padding(self.kernel),) + self.engine.initial_lengths()

    def next_lengths(self, lengths, samples):
        buffer, *lengths = lengths
        window = buffer + samples
        outputs = _window_outputs(window, self.kernel)
        return (window - outputs,) + self.engine.next_lengths(tuple(lengths), outputs)

    def initial_state(self, batch_size, dtype):
        state = {"preemp_buffer": ops.zeros((batch_size, _left_padding(self.kernel)), dtype)}
        state.update(self.engine.initial_state(batch_size, dtype))
        return state

    def step(self, chunk, state):
        samples, buffer = self._preemphasis(state["preemp_buffer"], chunk, final=False)
        frames, engine_state = self.engine.step(samples, self._engine_state(state))
        return frames, {"preemp_buffer": buffer, **engine_state}

    def flush(self, state):
        samples, _ = self._preemphasis(
            state["preemp_buffer"], _take(state["preemp_buffer"], 0, 0), final=True
        )
        frames, engine_state = self.engine.step(samples, self._engine_state(state))
        return ops.concatenate([frames, self.engine.flush(engine_state)], axis=1)

    def _engine_state(self, state):
        return {key: state[key] for key in self.engine.state_keys}

    def _preemphasis(self, buffer, samples, final):
        """Pre-emphasis outputs completed by `samples`, and the new buffer."""
        window = ops.concatenate([buffer, samples], axis=1)
        if final:  # The SAME right padding of the offline pre-emphasis.
            window = ops.pad(window, [[0, 0], [0, self.right]])
        length = window.shape[1]
        count = _window_outputs(length, self.kernel)
        new_buffer = _take(window, count, length)
        if count == 0:
            return _take(window, 0, 0), new_buffer
        # The layer's own SAME call on the window; its outputs whose taps all
        # lie inside the window are the VALID ones, those of the stream.
        left = _left_padding(self.kernel)
        outputs = self.preemp(window[:, :, None])[:, left : left + count, 0]
        return ops.cast(outputs, window.dtype), new_buffer


class _FilterbankEngine:
    """Convolution, activation, pooling (the exact engines), then `_FrameStages`."""

    def __init__(self, frontend, compressed=True):
        name = frontend.name
        if not frontend.built:
            frontend.build((None, None))
        fb = None
        after = []
        for layer in frontend.layers:
            if isinstance(layer, waveforms.WaveformInput) or layer is frontend.preemp_conv:
                continue
            if isinstance(layer, filterbank_lib.Filterbank):
                fb = layer
            elif fb is None:
                raise ValueError(f"{name}: unknown stage {layer.name!r} before the filterbank.")
            else:
                after.append(layer)
        if fb is None:
            raise ValueError(f"{name} has no filterbank stage to stream.")
        self.filterbank = fb
        _check_stride_one_same(fb.conv, "convolution", name)
        pool = fb.pooling
        self.compression = _FrameStages(after, name)
        self.frame_stages = self.compression if compressed else _FrameStages([], name)
        self.energy_degree = _ENERGY_DEGREES.get(type(fb.activation))
        self.stride = pool.strides
        self.pool_kernel = pool.kernel_size
        self.conv_kernel = fb.conv.kernel_size
        if not isinstance(self.conv_kernel, int):
            (self.conv_kernel,) = self.conv_kernel
        # SAME pooling of a multiple of the stride: pad_total = max(K - s, 0)
        # for every such length (`ops.padding.same_padding`).
        if pool.padding == "same":
            self.pool_left, self.pool_right = padding_lib.same_padding(
                self.stride * self.pool_kernel, self.pool_kernel, self.stride
            )
        else:
            self.pool_left, self.pool_right = 0, 0
        self.n_filters = fb.compute_output_shape((None, None, 1))[-1]
        self.latency = (
            _right_padding(self.conv_kernel) + self.pool_kernel - self.stride - self.pool_left
        )
        self.buffer_keys = ("conv_buffer", "pool_buffer")
        self.state_keys = self.buffer_keys + self.frame_stages.state_keys
        self.state_channels = {"pool_buffer": (self.n_filters,)}
        if self.frame_stages.pcen is not None:
            self.state_channels["pcen_smoother"] = (self.n_filters,)

    # Buffer lengths (static), shared by `step` and the state checks.

    def initial_lengths(self):
        return (_left_padding(self.conv_kernel), self.pool_left)

    def next_lengths(self, lengths, samples):
        conv, pool = lengths
        conv_window = conv + samples
        activations = _window_outputs(conv_window, self.conv_kernel)
        pool_window = pool + activations
        frames = _pool_frames(pool_window, self.pool_kernel, self.stride)
        return (conv_window - activations, pool_window - frames * self.stride)

    def initial_state(self, batch_size, dtype):
        lengths = dict(zip(self.buffer_keys, self.initial_lengths()))
        state = {"conv_buffer": ops.zeros((batch_size, lengths["conv_buffer"]), dtype)}
        state["pool_buffer"] = ops.full(
            (batch_size, lengths["pool_buffer"], self.n_filters),
            self.filterbank.pooling.padding_value,
            dtype,
        )
        state.update(self.frame_stages.initial_state(batch_size, self.n_filters, dtype))
        return state

    def step(self, chunk, state, final=False):
        new_state = {}
        activations, new_state["conv_buffer"] = self._activations(
            state["conv_buffer"], chunk, final
        )
        frames, new_state["pool_buffer"] = self._pool(state["pool_buffer"], activations, final)
        if frames.shape[1] == 0:
            for key in self.frame_stages.state_keys:
                new_state[key] = state[key]
            return _cast_frames(frames, self.frame_stages), new_state
        frames, frame_state = self.frame_stages(frames, state)
        new_state.update(frame_state)
        return frames, new_state

    def flush(self, state):
        batch = state["conv_buffer"].shape[0]
        empty = ops.zeros((batch, 0), state["conv_buffer"].dtype)
        frames, _ = self.step(empty, state, final=True)
        return frames

    def _activations(self, buffer, samples, final):
        """Activations `[batch, count, channels]` completed by `samples`."""
        window = ops.concatenate([buffer, samples], axis=1)
        if final:
            window = ops.pad(window, [[0, 0], [0, _right_padding(self.conv_kernel)]])
        length = window.shape[1]
        count = _window_outputs(length, self.conv_kernel)
        new_buffer = _take(window, count, length)
        batch = window.shape[0]
        if count == 0:
            return ops.zeros((batch, 0, self.n_filters), window.dtype), new_buffer
        left = _left_padding(self.conv_kernel)
        fb = self.filterbank
        if fb.engine == "fused":
            # The fused engine's correlation of the window (channels major,
            # zero past its end); the VALID outputs start at the left padding.
            padded = fb.padded_activation(window, start=0, length=length)
            activations = ops.transpose(padded[:, :, left : left + count], (1, 2, 0))
        else:
            outputs = fb.activation(fb.conv(window[:, :, None]))
            activations = ops.cast(outputs[:, left : left + count, :], window.dtype)
        return activations, new_buffer

    def _pool(self, buffer, activations, final):
        """Frames `[batch, k, channels]` completed by `activations`."""
        pool = self.filterbank.pooling
        window = ops.concatenate([buffer, ops.cast(activations, buffer.dtype)], axis=1)
        if final:
            window = ops.pad(
                window, [[0, 0], [0, self.pool_right], [0, 0]], constant_values=pool.padding_value
            )
        length = window.shape[1]
        frames = _pool_frames(length, self.pool_kernel, self.stride)
        new_buffer = _take(window, frames * self.stride, length)
        if final:
            new_buffer = _take(new_buffer, 0, 0)
        batch = window.shape[0]
        if frames == 0:
            return ops.zeros((batch, 0, self.n_filters), window.dtype), new_buffer
        # `pool_padded_channels_major` reads whole strides: fill the last one
        # (those values meet zero taps, or are never the maximum).
        blocks = frames + -(-self.pool_kernel // self.stride) - 1
        used = _take(window, 0, min(length, blocks * self.stride))
        used = ops.pad(
            used,
            [[0, 0], [0, blocks * self.stride - used.shape[1]], [0, 0]],
            constant_values=pool.padding_value,
        )
        pooled = pool.pool_padded_channels_major(ops.transpose(used, (2, 0, 1)), frames)
        return ops.transpose(pooled, (1, 2, 0)), new_buffer


class _BandLimitedEngine:
    """`BandLimitedGaborPooling` on the blocks of a stream, then `_FrameStages`.

    Offline, the layer cuts the (left-padded) clip into overlap-save blocks on
    a grid anchored at its start; the stream lays the same grid from its first
    sample, so each block, and so each frame, is computed from the same
    samples by the same operations:

    - the samples buffer holds the padded stream from the start of the next
      block (it starts as the offline left padding: `valid_start + guard +
      pad_left` zeros);
    - each complete block (`block_size` samples, hop `plan.hop`) gives every
      filter group `hop / D` points of its decimated power;
    - each group's power buffer holds its points from the first one that the
      next frame reads (the first block's leading `grid_start(D)` points are
      never read); a frame is emitted once every group has its points;
    - frame 0 and the last frame get the edge kernels of the offline layer
      (taps on the zero padding left out), chosen by the `frames_started` flag
      and, in `flush`, by their distance from the end.

    Frames therefore come in bursts of `hop / stride` frames, one per block,
    and a frame waits up to about a block for its block to complete.
    """

    def __init__(self, frontend, layer, after, compressed=True):
        name = frontend.name
        if layer.plan is None:
            layer.update_band_plan()
        self.layer = layer
        self.plan = plan = layer.plan
        self.stride = layer.strides
        self.n_filters = layer.n_filters
        self.block = layer.block_size
        self.pad_left = (
            (layer.kernel_size - self.stride) // 2 if layer.kernel_size > self.stride else 0
        )
        self.offset = plan.valid_start + plan.guard + self.pad_left
        self.groups = []
        for decimation, indices in plan.groups:
            matrix, kernel_len = band_plan.interpolation_matrix(
                decimation, layer.kernel_size, layer.interpolation_taps
            )
            del matrix
            self.groups.append((decimation, indices, layer.grid_start(decimation), kernel_len))
        self.compression = _FrameStages(after, name)
        self.frame_stages = self.compression if compressed else _FrameStages([], name)
        self.energy_degree = 2
        self.buffer_keys = ("sample_buffer",) + tuple(f"power_buffer_{d}" for d, *_ in self.groups)
        self.state_keys = self.buffer_keys + ("frames_started",) + self.frame_stages.state_keys
        self.state_channels = {
            f"power_buffer_{d}": (len(indices),) for d, indices, *_ in self.groups
        }
        if self.frame_stages.pcen is not None:
            self.state_channels["pcen_smoother"] = (self.n_filters,)
        if self.emitted_frames(self.block) < 2:
            raise ValueError(f"{name}: block_size {self.block} is too short to stream.")
        self.latency = _worst_latency(self.emitted_frames, self.stride, self.block)

    # Static bookkeeping.

    def _blocks(self, samples_in_buffer):
        if samples_in_buffer < self.block:
            return 0
        return (samples_in_buffer - self.block) // self.plan.hop + 1

    def _frames(self, powers):
        """Frames that every group's power buffer completes."""
        counts = [
            max(0, (length - kernel_len) // (self.stride // d) + 1) if length >= kernel_len else 0
            for length, (d, _, _, kernel_len) in zip(powers, self.groups)
        ]
        return min(counts)

    def initial_lengths(self):
        return (self.offset,) + (0,) * len(self.groups)

    def _after_blocks(self, lengths, samples):
        """(sample buffer, power buffers) after `samples` more samples, before
        frames are taken, and the number of blocks computed."""
        buffer, *powers = lengths
        buffer += samples
        blocks = self._blocks(buffer)
        buffer -= blocks * self.plan.hop
        if blocks:
            powers = [
                length + blocks * self.plan.hop // d - (start if length == 0 else 0)
                for length, (d, _, start, _) in zip(powers, self.groups)
            ]
        return buffer, powers, blocks

    def next_lengths(self, lengths, samples):
        buffer, powers, _ = self._after_blocks(lengths, samples)
        frames = self._frames(powers)
        return (buffer,) + tuple(
            length - frames * (self.stride // d) for length, (d, *_) in zip(powers, self.groups)
        )

    def emitted_frames(self, num_samples):
        blocks = self._blocks(self.offset + int(num_samples))
        if not blocks:
            return 0
        return self._frames([blocks * self.plan.hop // d - start for d, _, start, _ in self.groups])

    def remaining_frames(self, lengths):
        """Frames that `flush` emits, from the buffer lengths of a state after N
        samples: N / stride minus those emitted.

        The samples buffer holds the samples from `j * hop - offset` (j blocks
        done) to N, and the first group's power buffer the points from frame
        E's first read to the end of block j: N and E both follow from j, which
        cancels out."""
        buffer, *powers = lengths
        if powers[0] == 0:
            return (buffer - self.offset) // self.stride
        decimation, _, start, _ = self.groups[0]
        samples = buffer - self.offset + (start + powers[0]) * decimation
        assert samples % self.stride == 0, (lengths, samples)
        return samples // self.stride

    # The state and the steps.

    def initial_state(self, batch_size, dtype):
        state = {"sample_buffer": ops.zeros((batch_size, self.offset), dtype)}
        for d, indices, *_ in self.groups:
            state[f"power_buffer_{d}"] = ops.zeros((batch_size, 0, len(indices)), dtype)
        state["frames_started"] = ops.zeros((batch_size,), "bool")
        state.update(self.frame_stages.initial_state(batch_size, self.n_filters, dtype))
        return state

    def step(self, chunk, state, final_frames=None):
        layer = self.layer
        buffer = ops.concatenate([state["sample_buffer"], chunk], axis=1)
        blocks = self._blocks(buffer.shape[1])
        hop = self.plan.hop
        bands = layer.filter_bands()
        new_state = {"sample_buffer": _take(buffer, blocks * hop, buffer.shape[1])}
        powers = []
        spectra = None
        if blocks:
            blocks_ = ops.stack(
                [_take(buffer, i * hop, i * hop + self.block) for i in range(blocks)], axis=1
            )
            spectra = layer.block_spectra(blocks_)
        for d, indices, start, _ in self.groups:
            old = state[f"power_buffer_{d}"]
            if blocks:
                new = ops.transpose(layer.group_power(indices, spectra, bands), (1, 2, 0))
                if old.shape[1] == 0:
                    new = _take(new, start, new.shape[1])
                old = ops.concatenate([old, ops.cast(new, old.dtype)], axis=1)
            powers.append(old)
        frames = self._frames([power.shape[1] for power in powers])
        if final_frames is not None:
            frames = final_frames
        started = state["frames_started"]
        pooled = []
        for power, (d, indices, _, kernel_len) in zip(powers, self.groups):
            step = self.stride // d
            new_state[f"power_buffer_{d}"] = _take(power, frames * step, power.shape[1])
            pooled.append(
                self._pool(power, d, indices, kernel_len, frames, bands, started, final_frames)
            )
        new_state["frames_started"] = ops.logical_or(started, ops.convert_to_tensor(frames > 0))
        if frames == 0:
            for key in self.frame_stages.state_keys:
                new_state[key] = state[key]
            empty = ops.zeros((chunk.shape[0], 0, self.n_filters), buffer.dtype)
            return _cast_frames(empty, self.frame_stages), new_state
        energies = ops.take(ops.concatenate(pooled, axis=2), self.plan.inverse_order, axis=2)
        features, frame_state = self.frame_stages(energies, state)
        new_state.update(frame_state)
        return features, new_state

    def _pool(self, power, decimation, indices, kernel_len, frames, bands, started, final_frames):
        """Frames `[batch, frames, count]` of one group from its power buffer
        `[batch, points, count]` (zero past its end, as offline)."""
        if frames == 0:
            return ops.zeros((power.shape[0], 0, len(indices)), power.dtype)
        windows, matrix, _ = self.layer.pooling_kernels(decimation, indices, bands.windows)
        step = self.stride // decimation
        channels_major = ops.transpose(power, (2, 0, 1))
        needed = (frames - 1) * step + -(-kernel_len // step) * step
        if channels_major.shape[2] < needed:
            channels_major = ops.pad(
                channels_major, [[0, 0], [0, 0], [0, needed - channels_major.shape[2]]]
            )
        pooled = block_pooling.channels_major_block_pooling(
            channels_major, ops.matmul(windows, matrix), step, frames
        )

        def masked_pooling(frame, inside):
            """Frame `frame` pooled with the window taps outside the signal left out."""
            kernel = ops.matmul(windows * ops.cast(inside, windows.dtype)[None], matrix)
            samples = channels_major[:, :, step * frame : step * frame + kernel_len]
            return ops.einsum("cbq,cq->cb", samples, kernel)

        # Frames whose window crosses an edge of the stream: those of flush (the end;
        # the start too if nothing was emitted before) and the first two of the stream.
        # Once frames have been emitted (`started`), only the end's taps are left out.
        final = final_frames is not None
        edge_frames = range(frames) if final else range(min(2, frames))
        taps = ops.arange(windows.shape[1], dtype="int32")
        edges = []
        for frame in edge_frames:
            from_start = frame * self.stride - self.pad_left + taps >= 0
            if final:
                from_end = (frame - frames) * self.stride - self.pad_left + taps < 0
                first_frames = masked_pooling(frame, ops.logical_and(from_start, from_end))
                later_frames = masked_pooling(frame, from_end)
            else:
                first_frames, later_frames = masked_pooling(frame, from_start), pooled[:, :, frame]
            edges.append(ops.where(started[None, :], later_frames, first_frames))
        pooled = ops.concatenate([ops.stack(edges, axis=2), pooled[:, :, len(edge_frames) :]], 2)
        return ops.transpose(pooled, (1, 2, 0))

    def flush(self, state):
        lengths = tuple(state[key].shape[1] for key in self.buffer_keys)
        remaining = self.remaining_frames(lengths)
        batch = state["sample_buffer"].shape[0]
        dtype = state["sample_buffer"].dtype
        if remaining <= 0:
            return ops.zeros((batch, 0, self.n_filters), dtype)
        # Zeros past the end, as the offline layer pads the clip, until every
        # group holds the points of the last frame.
        zeros = 0
        while True:
            _, powers, _ = self._after_blocks(lengths, zeros)
            if self._frames(powers) >= remaining:
                break
            zeros += self.plan.hop
        chunk = ops.zeros((batch, zeros), dtype)
        frames, _ = self.step(chunk, state, final_frames=remaining)
        return frames


def _worst_latency(emitted_frames, stride, block):
    """The most samples past the end of a frame's hop that the frame waits for
    (chunks of one stride) when frames come a block at a time, over a few
    blocks; `emitted_frames(N)` is the number of frames out after N samples."""
    worst, emitted = 0, 0
    for strides in range(1, 4 * block // stride):
        now = emitted_frames(strides * stride)
        for frame in range(emitted, now):
            worst = max(worst, strides * stride - (frame + 1) * stride)
        emitted = now
    return worst


def _cast_frames(frames, frame_stages):
    """Empty frames in the dtype the frame stages would return."""
    last = frame_stages.pcen or (frame_stages.layers[-1] if frame_stages.layers else None)
    return frames if last is None else ops.cast(frames, last.compute_dtype)


class _MelEngine:
    """Frames of `tf.signal.frame(pad_end=True)`, mel power, compression."""

    def __init__(self, frontend, compressed=True):
        if not frontend.built:
            frontend.build((None, None))
        self.mel = frontend
        self.stride = frontend.stride
        self.window_size = frontend.window_size
        self.n_filters = frontend.n_filters
        layers = [] if frontend.compression_fn is None else [frontend.compression_fn]
        self.compression = _FrameStages(layers, frontend.name)
        self.frame_stages = self.compression if compressed else _FrameStages([], frontend.name)
        self.energy_degree = 2  # mel power
        # Frame f reads samples f s .. f s + K - 1, K - s past its own hop.
        self.latency = self.window_size - self.stride
        self.buffer_keys = ("frame_buffer",)
        self.state_keys = self.buffer_keys + self.frame_stages.state_keys
        self.state_channels = {}
        if self.frame_stages.pcen is not None:
            self.state_channels["pcen_smoother"] = (self.n_filters,)

    def initial_lengths(self):
        return (0,)  # Mel frames are not centred: no left padding.

    def next_lengths(self, lengths, samples):
        (buffer,) = lengths
        window = buffer + samples
        frames = _pool_frames(window, self.window_size, self.stride)
        return (window - frames * self.stride,)

    def initial_state(self, batch_size, dtype):
        state = {"frame_buffer": ops.zeros((batch_size, 0), dtype)}
        state.update(self.frame_stages.initial_state(batch_size, self.n_filters, dtype))
        return state

    def step(self, chunk, state):
        window = ops.concatenate([state["frame_buffer"], chunk], axis=1)
        length = window.shape[1]
        frames = _pool_frames(length, self.window_size, self.stride)
        new_state = {"frame_buffer": _take(window, frames * self.stride, length)}
        return self._frames(window, frames, state, new_state)

    def flush(self, state):
        window = state["frame_buffer"]
        # The frames left are those starting in the buffer, with the end
        # zero padding of `frame_signal`.
        frames = window.shape[1] // self.stride
        blocks = frames + -(-self.window_size // self.stride) - 1
        if frames:
            window = ops.pad(window, [[0, 0], [0, blocks * self.stride - window.shape[1]]])
        outputs, _ = self._frames(window, frames, state, {})
        return outputs

    def _frames(self, window, frames, state, new_state):
        if frames == 0:
            for key in self.frame_stages.state_keys:
                new_state[key] = state[key]
            empty = ops.zeros((window.shape[0], 0, self.n_filters), window.dtype)
            return _cast_frames(empty, self.frame_stages), new_state
        # The frontend's own framing, window, FFT and mel matrix; the frames
        # used are those that lie inside the window.
        used = _take(window, 0, (frames - 1) * self.stride + self.window_size)
        power = self.mel.mel_power(used)[:, :frames, :]
        outputs, frame_state = self.frame_stages(power, state)
        new_state.update(frame_state)
        return ops.cast(outputs, self.mel.compute_dtype), new_state
