"""A folder of class sub-folders as a classification task (``load_task.dataset='audio_folder'``).

Layouts (``load_task.data_dir`` is ``DIR``)::

    DIR/<class>/<file>                          split by file name (see below), or
    DIR/{train,validation,test}/<class>/<file>  the splits as given

Files are WAV, FLAC or OGG, at any sample rate and channel count (resampled to the
frontend's rate and mixed to mono by `local_audio`). Class names are the sub-folder names,
sorted; label ``i`` is the ``i``-th name. Without split folders each class is split on its
own, deterministically by file name (`local_audio.split_by_name`), with
``load_task.validation_fraction`` and ``load_task.test_fraction`` (0.1 each by default).
"""

import os

from experiments.data import audio_io
from experiments.data import local_audio


def _class_folders(root: str) -> list:
    return sorted(
        name
        for name in os.listdir(root)
        if not name.startswith((".", "_")) and os.path.isdir(os.path.join(root, name))
    )


def _audio_files(folder: str) -> list:
    paths = []
    for directory, subdirectories, names in os.walk(folder):
        subdirectories.sort()
        paths += [os.path.join(directory, n) for n in sorted(names) if local_audio.is_audio_file(n)]
    return paths


def list_files(root: str, validation_fraction: float = 0.1, test_fraction: float = 0.1):
    """The folder's labelled files and class names.

    Returns:
        (list of `local_audio.LabelledFile`, sorted class names).

    Raises:
        DataNotFoundError: the folder does not exist.
        ValueError: no class folder, no audio file, a single class, bad fractions, an
            empty split, or split folders without train/.
    """
    local_audio.check_fractions(validation_fraction, test_fraction)
    audio_io.require_path(root, "audio_folder data_dir", is_dir=True)
    given = [s for s in local_audio.SPLITS if os.path.isdir(os.path.join(root, s))]
    if given:
        return _given_splits(root, given)
    class_names = _class_folders(root)
    files = []
    for label, name in enumerate(class_names):
        unsplit = [
            local_audio.LabelledFile(path, (label,), "")
            for path in _audio_files(os.path.join(root, name))
        ]
        files += local_audio.split_by_name(unsplit, validation_fraction, test_fraction)
    _check_found(root, class_names, files)
    return files, tuple(class_names)


def _given_splits(root, given):
    names = {split: _class_folders(os.path.join(root, split)) for split in given}
    class_names = sorted(set().union(*names.values()))
    if "train" not in given:
        raise ValueError(f"audio_folder {root!r} has {given} folders but no train/ folder.")
    files = []
    for split in given:
        for name in names[split]:
            for path in _audio_files(os.path.join(root, split, name)):
                files.append(local_audio.LabelledFile(path, (class_names.index(name),), split))
    _check_found(root, class_names, files)
    return files, tuple(class_names)


def _check_found(root, class_names, files):
    if not class_names:
        raise ValueError(
            f"audio_folder {root!r} has no class folders; expected {root}/<class>/<file>.wav "
            f"(or .flac, .ogg), one folder per class."
        )
    if not files:
        raise ValueError(
            f"audio_folder {root!r}: its class folders ({', '.join(class_names)}) hold no "
            f"audio files ({', '.join(local_audio.AUDIO_EXTENSIONS)})."
        )
    local_audio.check_classes(class_names, files, f"audio_folder {root!r}")
