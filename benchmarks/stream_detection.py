r"""How well `experiments.stream` finds and times events in long recordings.

Each seed makes a recording with `synthetic_commands.synthesize_recording`: 8
events of different classes, each followed by 1 s of pink noise at 20 dB
below the events (the same noise runs through the whole recording). The
exported model in ``--workdir`` scans it with `experiments.stream.scan`, and
each event is matched with the detection of its class nearest in time (within
0.5 s). Reported per seed and in all:

- events detected with their class, and how many of them are timed within
  ``--tolerance_ms`` (100 by default) of the event's centre;
- events missed (no detection of their class near them) and spurious
  detections (matched to no event);
- the largest timing error and the real-time factor: of the whole scan, and once the
  step has met every shape of the stream's state (a compiled step compiles once for
  each; the band-limited engine's state cycles through one shape per hop of a block).

The classifier decides the class and `experiments.stream` the time, so a
missed event is the model's error (the stream scores a window exactly as the
offline model does: tests/layers/test_streaming_classifier.py), and a timing
error is the stream's.

Usage (from the repository root, after the README's quickstart)::

    python benchmarks/stream_detection.py --workdir=/tmp/leaf_quickstart \
        --seeds 3 4 5 6 7 8 9 10 11 12 --markdown
"""

import argparse
import collections
import json
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import scipy.io.wavfile  # noqa: E402

from experiments import stream as stream_lib  # noqa: E402
from experiments.data import synthetic_commands  # noqa: E402

NUM_EVENTS = 8
MATCH_SECONDS = 0.5


def recording_labels(seed):
    """The classes of the events of seed `seed`'s recording: 8 different ones."""
    rng = np.random.default_rng(seed)
    return [int(label) for label in rng.permutation(len(synthetic_commands.CLASS_NAMES))][
        :NUM_EVENTS
    ], rng


def match(found, events, class_names):
    """Pairs each event with the nearest detection of its class.

    Args:
        found: detections of `experiments.stream.detections` / `scan`.
        events: [(centre_seconds, label)] of `synthesize_recording`.
        class_names: the model's class names.

    Returns:
        ([(event_centre, class, detection or None)], unmatched detections).
    """
    left = list(found)
    pairs = []
    for centre, label in events:
        name = class_names[label]
        near = [d for d in left if d["class"] == name and abs(d["time_s"] - centre) < MATCH_SECONDS]
        best = min(near, key=lambda d: abs(d["time_s"] - centre)) if near else None
        if best is not None:
            left.remove(best)
        pairs.append((centre, name, best))
    return pairs, left


def evaluate(workdir, seeds, hop_ms, tolerance_ms, verbose=False):
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        for seed in seeds:
            labels, rng = recording_labels(seed)
            samples, events = synthetic_commands.synthesize_recording(labels, rng)
            path = os.path.join(temporary, f"recording_{seed}.wav")
            scipy.io.wavfile.write(path, synthetic_commands.SAMPLE_RATE, samples)
            result = stream_lib.scan(workdir, path, hop_ms=hop_ms)
            pairs, spurious = match(result["detections"], events, result["class_names"])
            errors = [1000 * (d["time_s"] - centre) for centre, _, d in pairs if d is not None]
            rows.append(
                {
                    "seed": seed,
                    "events": len(events),
                    "detected": len(errors),
                    "within_tolerance": int(sum(abs(e) <= tolerance_ms for e in errors)),
                    "missed": [name for _, name, d in pairs if d is None],
                    "spurious": [d["class"] for d in spurious],
                    "max_error_ms": max(map(abs, errors)) if errors else None,
                    "errors_ms": [round(e, 1) for e in errors],
                    "real_time_factor": result["real_time_factor"],
                    "steady_real_time_factor": result["steady_real_time_factor"],
                    "state_shapes": result["state_shapes"],
                }
            )
            if verbose:
                print(f"done: seed {seed}", file=sys.stderr, flush=True)
    return rows


def _counts(names):
    """'a ×2, b' for ["a", "b", "a"]; "-" for none."""
    counts = collections.Counter(names)
    return ", ".join(f"{n} ×{c}" if c > 1 else n for n, c in sorted(counts.items())) or "-"


def _mean_of_known(values):
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _factor(value):
    return "-" if value is None else f"{value:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="Workdir of a trained, exported model.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5, 6, 7])
    parser.add_argument("--hop-ms", type=float, default=100.0)
    parser.add_argument("--tolerance-ms", type=float, default=100.0)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", help="Also write the rows to this file.")
    args = parser.parse_args()
    rows = evaluate(args.workdir, args.seeds, args.hop_ms, args.tolerance_ms, verbose=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    sep = " | " if args.markdown else "  "
    header = [
        "seed",
        "detected",
        f"within {args.tolerance_ms:g} ms",
        "max error (ms)",
        "missed",
        "spurious",
        "RTF",
        "RTF once compiled",
    ]
    lines = [sep.join(header)]
    if args.markdown:
        lines = ["| " + lines[0] + " |", "|" + "---|" * len(header)]
    errors = []
    for row in rows + [None]:
        if row is None:
            errors = [e for r in rows for e in r["errors_ms"]]
            row = {
                "seed": "all",
                "events": sum(r["events"] for r in rows),
                "detected": len(errors),
                "within_tolerance": sum(r["within_tolerance"] for r in rows),
                "missed": [m for r in rows for m in r["missed"]],
                "spurious": [s for r in rows for s in r["spurious"]],
                "max_error_ms": max(map(abs, errors)) if errors else None,
                "real_time_factor": float(np.mean([r["real_time_factor"] for r in rows])),
                "steady_real_time_factor": _mean_of_known(
                    [r["steady_real_time_factor"] for r in rows]
                ),
            }
        cells = [
            str(row["seed"]),
            f"{row['detected']}/{row['events']}",
            f"{row['within_tolerance']}/{row['detected']}",
            "-" if row["max_error_ms"] is None else f"{row['max_error_ms']:.0f}",
            _counts(row["missed"]),
            _counts(row["spurious"]),
            f"{row['real_time_factor']:.2f}",
            _factor(row["steady_real_time_factor"]),
        ]
        lines.append(("| " + sep.join(cells) + " |") if args.markdown else sep.join(cells))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
