r"""Runs an exported classifier over a long recording, as a stream, and prints detections.

    python -m experiments.stream --workdir=/tmp/leaf_quickstart --audio=recording.wav

It needs only the export (``<workdir>/export/model.keras`` and ``export_info.json``) and
leaf_keras, not the training code or its gin files. The recording is cut into hops of
``--hop_ms`` and fed to a `leaf_keras.StreamingClassifier`, which scores the last
``--window_seconds`` (by default the training clip length) after every hop, with the
loudness normalization the model was trained with. A detection is a run of consecutive
hops whose top class is the same and scores at least ``--threshold``; its time is the
middle of the run's window centres, which is the middle of a sound shorter than the
window that every window of the run contains.

Printed: the detections (time, class, peak score, hops), the latency (the frontend's
look-ahead and the hop) and the real-time factor (compute time over audio duration).
``--output_csv`` (default ``<workdir>/stream/<audio name>.csv``) gets the detections with
the columns ``time_s,class,score,hops``.

Audio at another sample rate than the model's is resampled, with a warning. A file that
cannot be decoded, a missing export or bad flags stop with a message naming them.
"""

import csv
import json
import os
import sys
import time
from typing import Sequence

import numpy as np
from absl import app
from absl import flags
from absl import logging

from experiments import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained and exported model.")
_AUDIO = flags.DEFINE_string("audio", None, "Recording to scan (WAV, or FLAC/OGG with soundfile).")
_HOP_MS = flags.DEFINE_float("hop_ms", 100.0, "Hop between classifications, in ms.")
_WINDOW_SECONDS = flags.DEFINE_float(
    "window_seconds", None, "Audio scored at each hop (default: the training clip length)."
)
_THRESHOLD = flags.DEFINE_float("threshold", 0.5, "Smallest score of a detection.")
_TASK = flags.DEFINE_string("task", None, "Task to report, for a multi-task model.")
_OUTPUT_CSV = flags.DEFINE_string(
    "output_csv", None, "Detections CSV (default <workdir>/stream/<audio name>.csv)."
)

STREAM_DIR = "stream"


def detections(scores, window_centers, threshold, class_names, multi_label=False):
    """Detections of per-hop scores.

    Args:
        scores: [hops, classes] probabilities of the window scored at each hop.
        window_centers: [hops] time of the middle of each hop's window, in seconds.
        threshold: smallest score of a detection.
        class_names: the name of each class.
        multi_label: classes are independent (sigmoid): a run is a class's consecutive
            hops at or above `threshold`, whatever the other classes score. Otherwise
            (softmax) a run is consecutive hops with the same top class at or above it.

    Returns:
        [{"time_s", "class", "score", "hops"}] ordered by time: the middle of the run's
        window centres, the class name, its peak score and the run's length.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != len(class_names):
        raise ValueError(
            f"scores must be [hops, {len(class_names)} classes], got shape {scores.shape}."
        )
    if multi_label:
        active = scores >= threshold
    else:
        active = np.zeros(scores.shape, bool)
        top = np.argmax(scores, axis=1)
        rows = np.arange(len(scores))
        active[rows, top] = scores[rows, top] >= threshold
    found = []
    for label, name in enumerate(class_names):
        flags_ = np.concatenate([[False], active[:, label], [False]])
        edges = np.flatnonzero(np.diff(flags_.astype(int)))
        for start, stop in zip(edges[::2], edges[1::2]):
            middle = (window_centers[start] + window_centers[stop - 1]) / 2
            found.append(
                {
                    "time_s": round(float(middle), 3),
                    "class": name,
                    "score": round(float(scores[start:stop, label].max()), 4),
                    "hops": int(stop - start),
                }
            )
    return sorted(found, key=lambda item: item["time_s"])


def _compiled(step):
    import keras  # pylint: disable=import-outside-toplevel

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        return tf.function(step, jit_compile=True, reduce_retracing=False)
    if backend == "jax":
        import jax  # pylint: disable=import-outside-toplevel

        return jax.jit(step)
    return step


def _load_export(workdir):
    from experiments.data import audio_io  # pylint: disable=import-outside-toplevel

    export_dir = os.path.join(workdir, "export")
    info_path = audio_io.require_path(
        os.path.join(export_dir, "export_info.json"),
        "export info",
        hint="train and export a model first (python -m experiments.main ... --workdir=W).",
    )
    with open(info_path) as f:
        info = json.load(f)
    model_path = audio_io.require_path(
        os.path.join(export_dir, "model.keras"),
        "exported Keras model",
        hint="it is written by experiments.export next to export_info.json.",
    )
    return info, model_path


def _read_recording(path, sample_rate):
    """The recording as float32 [time] at `sample_rate` (resampled with a warning)."""
    from experiments.data import audio_io  # pylint: disable=import-outside-toplevel
    from experiments.data import resample  # pylint: disable=import-outside-toplevel

    audio_io.require_path(path, "audio file")
    samples, rate = audio_io.read_audio(path)
    samples = samples.astype(np.float64) / 32768.0
    if rate != sample_rate:
        logging.warning(
            "%s is at %d Hz; the model takes %d Hz: resampling it.", path, rate, sample_rate
        )
        samples = resample.resample_numpy(samples, rate, sample_rate)
    return samples.astype(np.float32)


def scan(workdir, audio, hop_ms=100.0, window_seconds=None, threshold=0.5, task=None):
    """Streams `audio` through the model exported in `workdir`.

    Returns:
        A dict: detections (see `detections`), scores [hops, classes], window_centers,
        class_names, latency_ms (the frontend's look-ahead), hop_ms, real_time_factor
        and audio_seconds.
    """
    import keras  # pylint: disable=import-outside-toplevel

    import leaf_keras  # pylint: disable=import-outside-toplevel

    info, model_path = _load_export(workdir)
    sample_rate = int(info.get("sample_rate", 16000))
    output = info.get("output", "softmax")
    class_names = info.get("class_names")
    if isinstance(output, dict):
        if task not in output:
            raise ValueError(
                f"The model has tasks {sorted(output)}: choose one with --task, got {task!r}."
            )
        output = output[task]
        class_names = (class_names or {}).get(task)
    elif task is not None:
        raise ValueError(f"--task={task!r} given, but the model has a single task.")
    model = keras.saving.load_model(model_path)
    preprocessing = info.get("preprocessing") or {}
    if window_seconds is None:
        window_seconds = preprocessing.get("min_length", sample_rate) / sample_rate
    classifier = leaf_keras.StreamingClassifier(
        model,
        window_seconds=window_seconds,
        sample_rate=sample_rate,
        loudness_normalization={} if preprocessing.get("loudness_normalize") else None,
    )
    hop = hop_ms * sample_rate / 1000
    if hop <= 0 or abs(hop - round(hop)) > 1e-6 or round(hop) % classifier.stride:
        raise ValueError(
            f"--hop_ms={hop_ms} is {hop:g} samples at {sample_rate} Hz; it must be a positive "
            f"multiple of the frontend's stride, {classifier.stride} samples "
            f"({1000 * classifier.stride / sample_rate:g} ms)."
        )
    hop = int(round(hop))
    samples = _read_recording(audio, sample_rate)
    audio_seconds = len(samples) / sample_rate
    # Whole hops, then enough silence for the recording's last frames to reach a window.
    tail = -(-classifier.latency // hop) * hop
    padded = np.zeros(-(-len(samples) // hop) * hop + tail, np.float32)
    padded[: len(samples)] = samples

    def probabilities(chunk, state):
        logits, state = classifier.step(chunk, state)
        if isinstance(logits, dict):
            logits = logits[task]
        if output == "sigmoid":
            return keras.ops.sigmoid(logits), state
        return keras.ops.softmax(logits, axis=-1), state

    step = _compiled(probabilities)
    state = classifier.initial_state(1)
    scores, centers = [], []
    started = time.perf_counter()
    for start in range(0, len(padded), hop):
        chunk = padded[None, start : start + hop]
        probs, state = step(chunk, state)
        scores.append(keras.ops.convert_to_numpy(probs)[0])
        centers.append(classifier.window_end_seconds(start + hop) - window_seconds / 2)
    seconds = time.perf_counter() - started
    scores = np.stack(scores)
    if class_names is None:
        class_names = [str(label) for label in range(scores.shape[1])]
    return {
        "detections": detections(
            scores, np.asarray(centers), threshold, class_names, output == "sigmoid"
        ),
        "scores": scores,
        "window_centers": np.asarray(centers),
        "class_names": list(class_names),
        "latency_ms": 1000 * classifier.latency / sample_rate,
        "hop_ms": 1000 * hop / sample_rate,
        "window_seconds": window_seconds,
        "real_time_factor": seconds / audio_seconds,
        "audio_seconds": audio_seconds,
    }


def write_csv(path, found):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["time_s", "class", "score", "hops"])
        writer.writeheader()
        writer.writerows(found)


def report(result, csv_path):
    lines = [
        f"{len(result['detections'])} detections in {result['audio_seconds']:.2f} s of audio "
        f"(window {result['window_seconds']:g} s, hop {result['hop_ms']:g} ms):",
        f"{'time_s':>8}  {'class':<24} {'score':>6}  hops",
    ]
    for found in result["detections"]:
        lines.append(
            f"{found['time_s']:>8.3f}  {found['class']:<24} {found['score']:>6.3f}  {found['hops']}"
        )
    lines += [
        f"latency: {result['latency_ms']:.2f} ms of frontend look-ahead; each window is scored "
        f"at the end of its hop, at most {result['hop_ms'] + result['latency_ms']:.2f} ms after "
        "its last sample",
        f"real-time factor: {result['real_time_factor']:.3f} (compute time / audio duration, "
        "first compilations included)",
        f"detections written to {csv_path}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not _WORKDIR.value or not _AUDIO.value:
        raise app.UsageError("--workdir and --audio are required.")
    cli.quiet_tensorflow(logging.get_verbosity())
    cli.quiet_libraries(logging.get_verbosity())
    from experiments.data import audio_io  # pylint: disable=import-outside-toplevel

    try:
        result = scan(
            _WORKDIR.value,
            _AUDIO.value,
            hop_ms=_HOP_MS.value,
            window_seconds=_WINDOW_SECONDS.value,
            threshold=_THRESHOLD.value,
            task=_TASK.value,
        )
    except (audio_io.DataNotFoundError, audio_io.UndecodableAudioError, ValueError) as error:
        sys.exit(f"ERROR: {error}")
    name = os.path.splitext(os.path.basename(_AUDIO.value))[0]
    csv_path = _OUTPUT_CSV.value or os.path.join(_WORKDIR.value, STREAM_DIR, f"{name}.csv")
    write_csv(csv_path, result["detections"])
    print(report(result, csv_path), flush=True)


if __name__ == "__main__":
    app.run(main)
