"""The streaming step of a frontend as a LiteRT (TFLite) model, state in and out.

`export_streaming_tflite(frontend, path, chunk_samples)` writes one ``.tflite`` file whose
signatures run `leaf_keras.streaming.FrontendStream.step` for chunks of `chunk_samples`
samples and a fixed batch, with TFLite builtin ops only. The state is explicit: every
signature takes ``chunk`` and the state tensors (``conv_buffer``, ``pool_buffer``, with PCEN
``pcen_smoother`` and ``pcen_started``; ``frame_buffer`` for the mel frontends) and returns
``frames`` and the next state under the same names, so a caller feeds the outputs back.

Why several signatures. A stream's buffers grow while it warms up (until its first frames,
a few hundred samples) and then keep one shape (`leaf_keras.streaming`): the state after
n chunks has shapes that depend on n while n < ``warmup_steps``, and a TFLite tensor shape
is fixed per signature (resizing the inputs of one graph would not change the static
slices that each step's shapes select). So the file holds one signature per distinct step:

- ``step_0`` … ``step_{k-1}`` (k = ``warmup_steps``): chunk n of the stream, n < k, from
  the state that ``step_{n-1}`` returned (``step_0`` from the initial state, which
  ``initial_state`` below or `FrontendStream.initial_state` gives);
- ``step``: every later chunk, state shapes unchanged from input to output;
- ``flush``: the last frames of a warm stream (after at least k chunks), computed with the
  offline frontend's right zero padding, as `FrontendStream.flush` does.

LiteRT cannot return a tensor with no elements, so a warm-up step that completes no frame
has no ``frames`` output (``frames_per_step`` says which), and a state tensor with no
elements (a mel stream's first, empty ``frame_buffer``) is built inside the signature rather
than passed (``carried_keys`` lists each signature's state inputs).

A signature is only the traced `FrontendStream.step` for those static shapes, so its
frames are the Keras stream's (and, concatenated with ``flush``, the offline frontend's)
up to float32 round-off. The filterbank is traced with direct convolutions
(`experiments.export._direct_convolutions`): TFLite has no builtin FFT for the fused
engine's correlation. A band-limited frontend streams as its exact-engine twin
(`experiments.exact_twin`: same weights; its complex FFTs are not TFLite builtins), with a
warning, ``engine`` in the returned dict, and the exact stream's latency (20 ms at 16 kHz
instead of the band-limited stream's 320 ms). Stages that `leaf_keras.streaming.stream`
cannot stream (clip normalization) are refused by it, naming the stage.

Example (LiteRT only)::

    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path="stream.tflite")
    state = {k: v for k, v in info["initial_state"].items() if v.size}  # numpy arrays
    for n, chunk in enumerate(chunks):            # [batch, chunk_samples] float32
        name = f"step_{n}" if n < info["warmup_steps"] else "step"
        outputs = interpreter.get_signature_runner(name)(chunk=chunk, **state)
        frames = outputs.pop("frames", None)      # [batch, new_frames, n_filters] or None
        state = outputs
    last_frames = interpreter.get_signature_runner("flush")(**state)["frames"]
"""

import os
import tempfile

import keras
import numpy as np

from experiments import exact_twin
from experiments import export as export_lib
from leaf_keras import streaming

# Safety bound on the warm-up (a 401-tap LEAF at 1 chunk of one stride per step warms up
# in a handful of steps).
_MAX_WARMUP_STEPS = 1000


def _shapes(state):
    return {key: tuple(value.shape) for key, value in state.items()}


def _numpy_state(state):
    return {key: keras.ops.convert_to_numpy(value) for key, value in state.items()}


def warmup_states(frontend_stream, chunk_samples, batch_size):
    """The states a stream of chunks of `chunk_samples` goes through until its shapes settle.

    Args:
        frontend_stream: a `FrontendStream`.
        chunk_samples: samples per chunk.
        batch_size: streams processed together.

    Returns:
        A list of numpy states: the initial state, then the state after each chunk, up to
        the first whose shapes a further chunk keeps (so ``len - 1`` warm-up steps).
    """
    state = frontend_stream.initial_state(batch_size)
    zeros = np.zeros((batch_size, chunk_samples), np.float32)
    states = [_numpy_state(state)]
    for _ in range(_MAX_WARMUP_STEPS):
        _, following = frontend_stream.step(zeros, state)
        if _shapes(following) == _shapes(state):
            return states
        states.append(_numpy_state(following))
        state = following
    raise RuntimeError(f"The stream's state did not settle in {_MAX_WARMUP_STEPS} chunks.")


def _check_arguments(frontend_stream, chunk_samples, batch_size):
    stride = frontend_stream.stride
    if (
        isinstance(chunk_samples, bool)
        or not isinstance(chunk_samples, (int, np.integer))
        or chunk_samples < stride
        or chunk_samples % stride
    ):
        raise ValueError(
            f"chunk_samples must be a positive multiple of the stride ({stride} samples), "
            f"got {chunk_samples!r}."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")


def export_streaming_tflite(frontend, path, chunk_samples, batch_size=1):
    """Writes the streaming step of `frontend` as a multi-signature TFLite model.

    Args:
        frontend: a built or unbuilt `leaf_keras` frontend that `leaf_keras.streaming.stream`
            accepts (`Leaf` with an exact engine, `MelFilterbanks`, `MelPCEN`, ...).
        path: the output ``.tflite`` file (its folder is created).
        chunk_samples: samples per chunk, a positive multiple of the frontend's stride
            (160 at 16 kHz: 160 is 10 ms, 1600 is 100 ms).
        batch_size: streams per call (fixed: the state's rows).

    Returns:
        A dict: ``path``, ``signatures`` (in call order, then ``flush``), ``warmup_steps``,
        ``carried_keys`` ({signature: its state inputs}; a step's state outputs are the next
        signature's inputs),
        ``frames_per_step`` ({signature: frames it returns}), ``state_keys``,
        ``initial_state`` ({key: numpy array}, the input of ``step_0``), ``chunk_samples``,
        ``batch_size``, ``stride``, ``latency`` (samples), ``n_filters``, ``bytes`` and, for a
        band-limited frontend, ``engine`` (the exact twin's filterbank and its
        ``max_relative_difference`` from the frontend on a 1-s probe).

    Raises:
        ValueError: on a non-TensorFlow backend, a frontend that cannot stream (the
            message names the stage), or a bad `chunk_samples` / `batch_size`.
        RuntimeError: if the conversion with builtin ops fails.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "TFLite export traces the step with TensorFlow: it needs KERAS_BACKEND=tensorflow, "
            f"got {keras.backend.backend()!r}."
        )
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    if not frontend.built:
        frontend.build((None, None))
    original = frontend
    frontend, twin_error = exact_twin.deployable(frontend, "Streaming TFLite export")
    frontend_stream = streaming.stream(frontend)
    _check_arguments(frontend_stream, chunk_samples, batch_size)
    chunk_samples, batch_size = int(chunk_samples), int(batch_size)
    states = warmup_states(frontend_stream, chunk_samples, batch_size)
    keys = sorted(states[0])
    names = [f"step_{n}" for n in range(len(states) - 1)] + ["step"]
    archive = keras.export.ExportArchive()
    archive.track(frontend)
    frames_per_step = {}

    # LiteRT cannot hand back (nor reliably take) a tensor with no elements: an empty
    # state buffer (a mel stream's first) is built inside the signature instead of being
    # an input, and is not an output; a warm-up step that completes no frame has no
    # "frames" output.
    def carried(state):
        return [k for k in keys if state[k].size]

    def state_specs(state):
        return [
            tf.TensorSpec(state[k].shape, tf.as_dtype(state[k].dtype), name=k)
            for k in carried(state)
        ]

    def full_state(state, values):
        given = dict(zip(carried(state), values))
        return {
            k: given[k] if k in given else tf.zeros(state[k].shape, state[k].dtype) for k in keys
        }

    def make_step(name, state):
        def step(chunk, *values):
            frames, following = frontend_stream.step(chunk, full_state(state, values))
            frames_per_step[name] = int(frames.shape[1])
            outputs = {k: v for k, v in following.items() if np.prod(v.shape)}
            if frames.shape[1]:
                outputs["frames"] = frames
            return outputs

        return step

    def flush(*values):
        frames, _ = frontend_stream.flush(full_state(states[-1], values))
        frames_per_step["flush"] = int(frames.shape[1])
        return {"frames": frames}

    chunk_spec = tf.TensorSpec([batch_size, chunk_samples], tf.float32, name="chunk")
    with export_lib._direct_convolutions(frontend):  # pylint: disable=protected-access
        for name, state in zip(names, states):
            archive.add_endpoint(name, make_step(name, state), [chunk_spec, *state_specs(state)])
        archive.add_endpoint("flush", flush, state_specs(states[-1]))
        with tempfile.TemporaryDirectory() as temporary:
            saved_model = os.path.join(temporary, "stream")
            archive.write_out(saved_model, verbose=False)
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            signatures = names + ["flush"]
            export_lib.export_tflite(saved_model, path, "builtins", signature_keys=signatures)
    info = {
        "path": path,
        "carried_keys": {name: carried(state) for name, state in zip(names, states)},
        "signatures": names + ["flush"],
        "warmup_steps": len(states) - 1,
        "frames_per_step": frames_per_step,
        "state_keys": keys,
        "initial_state": states[0],
        "chunk_samples": chunk_samples,
        "batch_size": batch_size,
        "stride": frontend_stream.stride,
        "latency": frontend_stream.latency,
        "n_filters": frontend_stream.n_filters,
        "bytes": os.path.getsize(path),
    }
    if frontend is not original:
        info["engine"] = exact_twin.description(twin_error)
    return info
