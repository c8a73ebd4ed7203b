"""One run per workdir: an exclusive lock on ``<workdir>/.lock`` held for the whole run.

Two trainings writing one workdir interleave their checkpoints, backups and
``training_log.csv`` rows, and one of them crashes when the other replaces its backup. The
lock is an OS file lock (`fcntl.flock`), so it goes away with its process, even after a
``kill -9``: a crashed run never leaves a stale lock to delete by hand. The file records who
holds it, for the message the second run gets.
"""

import fcntl
import json
import os
import shutil
import socket
import time

LOCK_FILE = ".lock"
# What a run writes besides its logs: last/best checkpoints and the backup (each with
# optimizer state), a SavedModel, a .keras file and a TFLite model. 100 MB covers the
# paper's encoders; a run that needs more still fails cleanly when a write fails.
MIN_FREE_MB = 100


class WorkdirInUseError(RuntimeError):
    """Another process is running an experiment in this workdir."""


class WorkdirNotWritableError(OSError):
    """The workdir cannot be created or written."""


class WorkdirFullError(OSError):
    """The workdir's filesystem has less free space than a run needs."""


def check_free_space(workdir, min_free_mb=MIN_FREE_MB):
    """Raises `WorkdirFullError` if `workdir`'s filesystem has under `min_free_mb` MB free."""
    free_mb = shutil.disk_usage(workdir).free / 2**20
    if free_mb < min_free_mb:
        raise WorkdirFullError(
            f"Only {free_mb:.0f} MB free on the filesystem of the workdir {workdir}; a run "
            f"needs at least {min_free_mb} MB for its checkpoints, backup and export. Free "
            "space or choose another --workdir."
        )


class WorkdirLock:
    """Context manager: holds ``<workdir>/.lock`` or raises `WorkdirInUseError`
    (`WorkdirNotWritableError` if the workdir cannot be written, `WorkdirFullError` if
    its disk has less than `min_free_mb` MB free), before any data is read.

    Example::

        with WorkdirLock("/tmp/run"):
            ...  # train, evaluate, export
    """

    def __init__(self, workdir, min_free_mb=MIN_FREE_MB):
        self.path = os.path.join(workdir, LOCK_FILE)
        self.min_free_mb = min_free_mb
        self._file = None

    def __enter__(self):
        workdir = os.path.dirname(self.path)
        try:
            os.makedirs(workdir, exist_ok=True)
            handle = open(self.path, "a+")  # pylint: disable=consider-using-with
        except OSError as error:
            # Before any data is read or any epoch trained.
            raise WorkdirNotWritableError(
                f"Cannot write to the workdir {workdir}: {error.strerror or error}. Choose a "
                "writable --workdir."
            ) from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            try:
                holder = json.loads(holder)
                who = (
                    f"process {holder['pid']} on {holder['host']}, running since "
                    f"{holder['started']}"
                )
            except (ValueError, KeyError, TypeError):
                who = "another process"
            raise WorkdirInUseError(
                f"The workdir {os.path.dirname(self.path)} is in use by {who}. Wait for it to "
                "finish, stop it, or choose another --workdir."
            ) from None
        try:
            check_free_space(workdir, self.min_free_mb)
        except WorkdirFullError:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        json.dump(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            },
            handle,
        )
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc_info):
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        return False
