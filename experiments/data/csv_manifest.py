"""A CSV of labelled audio files as a classification task (``load_task.dataset='csv'``).

``load_task.data_dir`` is the CSV file. Its header names the columns ``path``, ``label``
and optionally ``split`` (``train``, ``validation`` or ``test``); other columns are ignored.
Paths are relative to the CSV's folder (absolute paths work too). Labels joined by ``;``
(``dog;siren``) make the task multi-label: sigmoid loss, evaluated with mAP / AUC / d′.
Without a ``split`` column, or where a row leaves it empty, files are split per class (the
first label of a row) by file name, as in `audio_folder` (`local_audio.split_by_name`).
Class names are every label seen, sorted.
"""

import csv
import os

from experiments.data import audio_io
from experiments.data import local_audio

REQUIRED_COLUMNS = ("path", "label")
LABEL_SEPARATOR = ";"


def _rows(csv_path: str):
    audio_io.require_path(csv_path, "csv data_dir (the CSV file)")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ValueError(
                f"CSV {csv_path!r} has no column {', '.join(map(repr, missing))}; its header "
                f"is {columns} and must name 'path' and 'label' (and optionally 'split')."
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            row = {key.strip(): (value or "").strip() for key, value in row.items() if key}
            labels = [label.strip() for label in row["label"].split(LABEL_SEPARATOR)]
            labels = [label for label in labels if label]
            if not row["path"] or not labels:
                raise ValueError(f"CSV {csv_path!r}, line {line}: empty path or label.")
            split = row.get("split", "")
            if split and split not in local_audio.SPLITS:
                raise ValueError(
                    f"CSV {csv_path!r}, line {line}: split {split!r}; expected one of "
                    f"{local_audio.SPLITS} or empty."
                )
            rows.append((row["path"], labels, split))
    if not rows:
        raise ValueError(f"CSV {csv_path!r} lists no files.")
    return rows


def list_files(csv_path: str, validation_fraction: float = 0.1, test_fraction: float = 0.1):
    """The CSV's labelled files, class names and whether the task is multi-label.

    Returns:
        (list of `local_audio.LabelledFile`, sorted class names, multi_label).

    Raises:
        DataNotFoundError: the CSV does not exist.
        ValueError: a missing column, an empty or bad row, a single class, or an empty
            train or validation split.
    """
    local_audio.check_fractions(validation_fraction, test_fraction)
    rows = _rows(csv_path)
    root = os.path.dirname(os.path.abspath(csv_path))
    class_names = tuple(sorted({label for _, labels, _ in rows for label in labels}))
    index = {name: i for i, name in enumerate(class_names)}
    multi_label = any(len(labels) > 1 for _, labels, _ in rows)
    unsplit = {}
    files = []
    for path, labels, split in rows:
        path = os.path.normpath(os.path.join(root, path))
        item = local_audio.LabelledFile(path, tuple(index[label] for label in labels), split)
        if split:
            files.append(item)
        else:
            unsplit.setdefault(labels[0], []).append(item)
    for items in unsplit.values():
        files += local_audio.split_by_name(items, validation_fraction, test_fraction)
    local_audio.check_classes(class_names, files, f"CSV {csv_path!r}")
    return files, class_names, multi_label
