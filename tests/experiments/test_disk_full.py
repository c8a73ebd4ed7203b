"""A full disk: refused before training, and a failed write never leaves half a checkpoint.

Writes fail the way a full disk makes them fail: the writer has put part of the file down
when `OSError(ENOSPC)` comes. Every checkpoint, backup and JSON file must then still hold
its previous content, the temporary file must be gone, and the error must say both.
"""

import errno
import json
import os

import keras
import numpy as np
import pytest

from experiments import checkpointing
from experiments import workdir_lock

DISK_FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _model(seed):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.layers[0].kernel.assign(np.random.default_rng(seed).standard_normal((3, 2)))
    return model


def _fill_the_disk_while_writing(path, *args, **kwargs):
    del args, kwargs
    with open(path, "wb") as f:
        f.write(b"\x89HDF\r\n")  # the first bytes of what would have been written
    raise DISK_FULL


def test_a_weights_write_that_fills_the_disk_keeps_the_previous_checkpoint(tmp_path):
    path = str(tmp_path / "last.weights.h5")
    checkpointing._save_weights_atomically(_model(0), path)  # pylint: disable=protected-access
    before = open(path, "rb").read()
    model = _model(1)
    model.save_weights = lambda filepath, overwrite=True: _fill_the_disk_while_writing(filepath)
    with pytest.raises(checkpointing.CheckpointWriteError) as raised:
        checkpointing._save_weights_atomically(model, path)  # pylint: disable=protected-access
    message = str(raised.value)
    assert "No space left on device" in message and "last.weights.h5 is intact" in message
    assert raised.value.errno == errno.ENOSPC
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["last.weights.h5"]  # no temporary left
    restored = _model(2)
    restored.load_weights(path)
    np.testing.assert_array_equal(restored.layers[0].kernel.numpy(), _model(0).layers[0].kernel)


def test_a_json_write_that_fills_the_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / "best.json")
    checkpointing.write_json_atomically({"epoch": 3}, path)

    def dump(data, f, **kwargs):
        del data, kwargs
        f.write('{"epo')
        raise DISK_FULL

    monkeypatch.setattr(checkpointing.json, "dump", dump)
    with pytest.raises(checkpointing.CheckpointWriteError, match="best.json is intact"):
        checkpointing.write_json_atomically({"epoch": 4}, path)
    monkeypatch.undo()
    assert json.load(open(path)) == {"epoch": 3}
    assert sorted(os.listdir(tmp_path)) == ["best.json"]


def test_a_backup_that_fills_the_disk_stays_restorable(tmp_path):
    backup_dir = str(tmp_path / "backup")
    backup = checkpointing.SafeBackupAndRestore(backup_dir, double_checkpoint=True)
    backup.set_model(_model(0))
    backup._current_epoch = 2  # pylint: disable=protected-access
    backup._save_model()  # pylint: disable=protected-access
    failing = _model(1)
    failing.save_weights = lambda filepath, overwrite=True: _fill_the_disk_while_writing(filepath)
    backup.set_model(failing)
    backup._current_epoch = 3  # pylint: disable=protected-access
    with pytest.raises(checkpointing.CheckpointWriteError, match="latest.weights.h5 is intact"):
        backup._save_model()  # pylint: disable=protected-access
    assert not [name for name in os.listdir(backup_dir) if ".tmp" in name]
    with open(os.path.join(backup_dir, "training_metadata.json")) as f:
        assert json.load(f)["epoch"] == 2
    restored = _model(2)
    restored.load_weights(os.path.join(backup_dir, "latest.weights.h5"))
    np.testing.assert_array_equal(restored.layers[0].kernel.numpy(), _model(0).layers[0].kernel)


def test_a_workdir_on_a_full_disk_is_refused_before_anything_runs(tmp_path, monkeypatch):
    usage = workdir_lock.shutil.disk_usage(str(tmp_path))
    monkeypatch.setattr(
        workdir_lock.shutil,
        "disk_usage",
        lambda path: usage._replace(free=20 * 2**20),  # 20 MB free
    )
    with pytest.raises(workdir_lock.WorkdirFullError, match=r"Only 20 MB free .* at least 100 MB"):
        with workdir_lock.WorkdirLock(str(tmp_path / "run")):
            pytest.fail("entered a workdir on a full disk")
    monkeypatch.undo()
    with workdir_lock.WorkdirLock(str(tmp_path / "run")):  # the refusal released the lock
        pass
