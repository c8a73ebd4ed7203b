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
_MIN_DURATION_MS = flags.DEFINE_float(
    "min_duration_ms", 250.0, "Shortest run of hops that makes a detection, in ms."
)
_MAX_GAP_MS = flags.DEFINE_float(
    "max_gap_ms", 100.0, "Longest dip of a class's score inside one detection, in ms."
)
_TASK = flags.DEFINE_string("task", None, "Task to report, for a multi-task model.")
_OUTPUT_CSV = flags.DEFINE_string(
    "output_csv", None, "Detections CSV (default <workdir>/stream/<audio name>.csv)."
)

STREAM_DIR = "stream"
CSV_COLUMNS = ["time_s", "start_s", "end_s", "class", "score", "hops"]


def detections(
    scores, window_centers, threshold, class_names, multi_label=False, min_hops=1, max_gap_hops=0
):
    """Detections of per-hop scores: runs of hops where a class is on.

    Post-processing as sound event detection does it: a class is on at a hop when
    it scores at least `threshold` (and, for softmax outputs, is the top class);
    gaps of at most `max_gap_hops` hops inside a run of one class are bridged
    (a score that dips for one hop does not split an event), and runs shorter
    than `min_hops` hops are dropped (a noise window that looks like a class for
    a hop or two is not an event).

    Args:
        scores: [hops, classes] probabilities of the window scored at each hop.
        window_centers: [hops] time of the middle of each hop's window, in seconds.
        threshold: smallest score of a detection.
        class_names: the name of each class.
        multi_label: classes are independent (sigmoid): a class is on at every hop it
            scores at least `threshold`, whatever the other classes score.
        min_hops: shortest run kept, in hops.
        max_gap_hops: longest gap bridged, in hops.

    Returns:
        [{"time_s", "start_s", "end_s", "class", "score", "hops"}] ordered by time:
        the middle, first and last of the run's window centres, the class name, its
        peak score and the number of hops at which it was on. `locate_events`
        refines the times.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != len(class_names):
        raise ValueError(
            f"scores must be [hops, {len(class_names)} classes], got shape {scores.shape}."
        )
    if min_hops < 1 or max_gap_hops < 0:
        raise ValueError(
            f"min_hops must be >= 1 and max_gap_hops >= 0, got {min_hops} and {max_gap_hops}."
        )
    if multi_label:
        active = scores >= threshold
    else:
        active = np.zeros(scores.shape, bool)
        top = np.argmax(scores, axis=1)
        rows = np.arange(len(scores))
        active[rows, top] = scores[rows, top] >= threshold
    centers = np.asarray(window_centers, np.float64)
    found = []
    for label, name in enumerate(class_names):
        for start, stop in _runs(active[:, label], min_hops, max_gap_hops):
            found.append(
                {
                    "time_s": round(float(centers[start] + centers[stop - 1]) / 2, 3),
                    "start_s": round(float(centers[start]), 3),
                    "end_s": round(float(centers[stop - 1]), 3),
                    "class": name,
                    "score": round(float(scores[start:stop, label].max()), 4),
                    "hops": int(active[start:stop, label].sum()),
                }
            )
    return sorted(found, key=lambda item: item["time_s"])


def _runs(on, min_length, max_gap):
    """[(start, stop)] of the runs of True in `on`, gaps <= max_gap bridged, runs
    shorter than min_length dropped."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(int), [0]])))
    merged = []
    for start, stop in zip(edges[::2], edges[1::2]):
        if merged and start - merged[-1][1] <= max_gap:
            merged[-1][1] = stop
        else:
            merged.append([start, stop])
    return [(start, stop) for start, stop in merged if stop - start >= min_length]


# Frames of the loudness curve `locate_events` reads: 10 ms, the frontends' stride.
ENERGY_FRAME_SECONDS = 0.01


def locate_events(
    found,
    samples,
    sample_rate,
    window_seconds,
    multi_label=False,
    min_snr_db=6.0,
    max_silence_seconds=0.35,
):
    """Times each detection at the sound that its windows classified.

    The middle of a run's window centres is the middle of the sound only if the
    classifier is as eager to hear a class when the sound enters a window (at its
    end) as when it leaves it (at its start). A classifier trained on clips that
    each hold a whole event is not: it fires on windows that hold part of one, and
    more readily at a window's end, since PCEN's smoother starts on the window's
    first frame and so partly normalizes away a sound there. The quickstart model's
    runs are up to 0.3 s early that way. The sound itself says when it was:

    1. the loudness curve of the audio that the run's windows cover, in 10 ms
       frames (mean square, dB);
    2. its background, the 20th percentile, and its loudest frame;
    3. the frames louder than halfway (in dB) from the background to the loudest,
       with silences up to `max_silence_seconds` bridged (the gap of a double beep,
       the dips of a tremolo, the spaces of a click train), make segments;
    4. the event is the segment with the most energy above the background among
       those that overlap the run's window centres: ``start_s`` and ``end_s`` are
       its ends, ``time_s`` their middle;
    5. runs located on overlapping segments heard one event: it is the one with
       the most hops (a sound that a class wins for a few hops besides the class
       that wins most of them, or one class's run split by a long dip). With
       sigmoid outputs (`multi_label`), only runs of the same class are merged.

    A run whose windows hold no sound `min_snr_db` above the background keeps the
    times of `detections`.

    Args:
        found: detections from `detections` (their ``start_s``/``end_s`` are the run's
            first and last window centres); updated in place.
        samples: the recording, float [time], at `sample_rate`.
        sample_rate: in Hz.
        window_seconds: the classified window's length.
        multi_label: the classes are independent (sigmoid outputs).
        min_snr_db: how far above the background a sound must rise to be located.
        max_silence_seconds: longest silence inside one event.

    Returns:
        `found`, ordered by time.
    """
    frame = int(round(ENERGY_FRAME_SECONDS * sample_rate))
    num_frames = len(samples) // frame
    power = np.mean(
        np.square(np.asarray(samples[: num_frames * frame], np.float64).reshape(-1, frame)), axis=1
    )
    level = 10 * np.log10(power + 1e-12)
    max_silence = int(round(max_silence_seconds / ENERGY_FRAME_SECONDS))
    for item in found:
        first = max(0, int((item["start_s"] - window_seconds / 2) / ENERGY_FRAME_SECONDS))
        last = int(np.ceil((item["end_s"] + window_seconds / 2) / ENERGY_FRAME_SECONDS))
        last = min(num_frames, last)
        if last - first < 2:
            continue
        covered = level[first:last]
        background, loudest = np.percentile(covered, 20), covered.max()
        if loudest - background < min_snr_db:
            continue
        segments = np.asarray(_runs(covered > (background + loudest) / 2, 1, max_silence))
        times = (first + segments) * ENERGY_FRAME_SECONDS
        overlapping = (times[:, 0] <= item["end_s"]) & (times[:, 1] >= item["start_s"])
        candidates = segments[overlapping] if overlapping.any() else segments
        excess = np.maximum(power[first:last] - 10 ** (background / 10), 0)
        start, stop = max(candidates, key=lambda segment: excess[segment[0] : segment[1]].sum())
        item["start_s"] = round(float(first + start) * ENERGY_FRAME_SECONDS, 3)
        item["end_s"] = round(float(first + stop) * ENERGY_FRAME_SECONDS, 3)
        item["time_s"] = round((item["start_s"] + item["end_s"]) / 2, 3)
        item["located"] = True
    events = []
    for item in sorted(found, key=lambda item: (-item["hops"], -item["score"])):
        same = [
            event
            for event in events
            if item.get("located")
            and event.get("located")
            and (not multi_label or event["class"] == item["class"])
            and item["start_s"] < event["end_s"]
            and event["start_s"] < item["end_s"]
        ]
        if not same:
            events.append(item)
        elif same[0]["class"] == item["class"]:
            same[0]["hops"] += item["hops"]
            same[0]["score"] = max(same[0]["score"], item["score"])
    for event in events:
        event.pop("located", None)
    return sorted(events, key=lambda item: item["time_s"])


def compiled_step(step):
    """`step` compiled for the Keras backend: XLA on TensorFlow, `jax.jit`, eager torch."""
    import keras  # pylint: disable=import-outside-toplevel

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        return tf.function(step, jit_compile=True, reduce_retracing=False)
    if backend == "jax":
        import jax  # pylint: disable=import-outside-toplevel

        return jax.jit(step)
    return step


def state_shapes(state):
    """The shapes of a stream's (possibly nested) state: a compiled step compiles once for
    each distinct value."""
    import keras  # pylint: disable=import-outside-toplevel

    return tuple(tuple(keras.ops.shape(value)) for value in keras.tree.flatten(state))


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


def scan(
    workdir,
    audio,
    hop_ms=100.0,
    window_seconds=None,
    threshold=0.5,
    task=None,
    min_duration_ms=250.0,
    max_gap_ms=100.0,
):
    """Streams `audio` through the model exported in `workdir`.

    Windows are scored from the first hop whose window is full: one that starts
    before the recording holds digital silence, which no training clip did.

    Args:
        workdir: holds ``export/model.keras`` and ``export/export_info.json``.
        audio: the recording's path.
        hop_ms: hop between classifications (a multiple of the frontend's stride).
        window_seconds: audio scored at each hop (default: the training clip length).
        threshold: smallest score of a detection.
        task: the task to report, for a multi-task model.
        min_duration_ms: shortest run of hops that makes a detection.
        max_gap_ms: longest dip inside one detection's run of hops.

    Returns:
        A dict: detections (see `detections`), scores [hops, classes], window_centers,
        class_names, latency_ms (the frontend's look-ahead), hop_ms, audio_seconds,
        real_time_factor (compute time over audio duration), state_shapes (how many
        shapes of the stream's state the step met: a compiled step compiles once for
        each), warmup_seconds (the first step of each shape) and steady_real_time_factor
        (the other steps' time over their audio; None if there are none).
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

    step = compiled_step(probabilities)
    state = classifier.initial_state(1)
    scores, centers = [], []
    # A compiled step compiles once per shape of the state it is given. The band-limited
    # engine's buffers cycle through one shape per hop of its blocks (about 30 at 100 ms), so
    # on a short recording those first steps are most of the time: they are timed apart,
    # and the rest give the real-time factor of a stream that has run for a while.
    shapes_seen = set()
    warmup_seconds = steady_seconds = 0.0
    steady_hops = 0
    for start in range(0, len(padded), hop):
        chunk = padded[None, start : start + hop]
        shapes = state_shapes(state)
        started = time.perf_counter()
        probs, state = step(chunk, state)
        probs = keras.ops.convert_to_numpy(probs)[0]  # waits for the step (JAX runs ahead)
        elapsed = time.perf_counter() - started
        if shapes in shapes_seen:
            steady_seconds += elapsed
            steady_hops += 1
        else:
            shapes_seen.add(shapes)
            warmup_seconds += elapsed
        end = classifier.window_end_seconds(start + hop)
        if end >= window_seconds - 1e-9:
            scores.append(probs)
            centers.append(end - window_seconds / 2)
    seconds = warmup_seconds + steady_seconds
    if not scores:
        raise ValueError(
            f"{audio} lasts {audio_seconds:.3f} s, shorter than one {window_seconds:g}-s window."
        )
    scores = np.stack(scores)
    if class_names is None:
        class_names = [str(label) for label in range(scores.shape[1])]
    hop_seconds = hop / sample_rate
    found = detections(
        scores,
        np.asarray(centers),
        threshold,
        class_names,
        output == "sigmoid",
        min_hops=max(1, int(np.ceil(min_duration_ms / 1000 / hop_seconds - 1e-9))),
        max_gap_hops=int(max_gap_ms / 1000 / hop_seconds + 1e-9),
    )
    return {
        "detections": locate_events(
            found, samples, sample_rate, window_seconds, output == "sigmoid"
        ),
        "scores": scores,
        "window_centers": np.asarray(centers),
        "class_names": list(class_names),
        "latency_ms": 1000 * classifier.latency / sample_rate,
        "hop_ms": 1000 * hop / sample_rate,
        "window_seconds": window_seconds,
        "real_time_factor": seconds / audio_seconds,
        "steady_real_time_factor": (
            steady_seconds / (steady_hops * hop / sample_rate) if steady_hops else None
        ),
        "state_shapes": len(shapes_seen),
        "warmup_seconds": warmup_seconds,
        "audio_seconds": audio_seconds,
    }


def write_csv(path, found):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(found)


def _steady_factor(result):
    """The real-time factor once the step has met every shape of the stream's state."""
    shapes = f"the first step of each of the state's {result['state_shapes']} shapes"
    if result["steady_real_time_factor"] is None:
        return f"all of it in {shapes}, which compiles the step: scan longer for a steady figure"
    return (
        f"{result['steady_real_time_factor']:.3f} once compiled ({shapes} compiles the "
        f"step: {result['warmup_seconds']:.1f} s)"
    )


def report(result, csv_path):
    lines = [
        f"{len(result['detections'])} detections in {result['audio_seconds']:.2f} s of audio "
        f"(window {result['window_seconds']:g} s, hop {result['hop_ms']:g} ms):",
        f"{'time_s':>8} {'start_s':>8} {'end_s':>8}  {'class':<24} {'score':>6}  hops",
    ]
    for found in result["detections"]:
        lines.append(
            f"{found['time_s']:>8.3f} {found['start_s']:>8.3f} {found['end_s']:>8.3f}  "
            f"{found['class']:<24} {found['score']:>6.3f}  {found['hops']}"
        )
    lines += [
        f"latency: {result['latency_ms']:.2f} ms of frontend look-ahead; each window is scored "
        f"at the end of its hop, at most {result['hop_ms'] + result['latency_ms']:.2f} ms after "
        "its last sample",
        f"real-time factor: {result['real_time_factor']:.3f} (compute time / audio duration), "
        f"{_steady_factor(result)}",
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
            min_duration_ms=_MIN_DURATION_MS.value,
            max_gap_ms=_MAX_GAP_MS.value,
        )
    except (audio_io.DataNotFoundError, audio_io.UndecodableAudioError, ValueError) as error:
        sys.exit(f"ERROR: {error}")
    name = os.path.splitext(os.path.basename(_AUDIO.value))[0]
    csv_path = _OUTPUT_CSV.value or os.path.join(_WORKDIR.value, STREAM_DIR, f"{name}.csv")
    write_csv(csv_path, result["detections"])
    print(report(result, csv_path), flush=True)


if __name__ == "__main__":
    app.run(main)
