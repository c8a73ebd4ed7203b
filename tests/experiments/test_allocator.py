"""experiments.allocator: glibc's malloc keeps freed memory, checked with glibc's own
counters (``mallinfo2``) in a fresh process, so this test process keeps its settings."""

import os
import subprocess
import sys

import pytest

from experiments import allocator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Prints whether the settings applied, then how many mmap'd blocks a 64 MB allocation adds
# (glibc's default threshold is at most 32 MB) and whether freeing it shrinks the heap.
_PROBE = """
import ctypes, sys
sys.path.insert(0, sys.argv[1])
from experiments import allocator

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
applied = allocator.reuse_freed_memory()
before = libc.mallinfo2()
block = libc.malloc(64 * 2**20)
during = libc.mallinfo2()
libc.free(block)
after = libc.mallinfo2()
print(applied, during.hblks - before.hblks, after.arena >= during.arena)
"""


def _glibc():
    return sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None


def _probe(setting):
    env = dict(os.environ)
    env.pop(allocator.ENVIRONMENT_VARIABLE, None)
    if setting is not None:
        env[allocator.ENVIRONMENT_VARIABLE] = setting
    process = subprocess.run(
        [sys.executable, "-c", _PROBE, ROOT], env=env, capture_output=True, text=True, check=False
    )
    assert process.returncode == 0, process.stderr
    return process.stdout.split()


@pytest.mark.skipif(not _glibc(), reason="mallopt settings are glibc's")
def test_large_blocks_come_from_the_heap_and_stay_there():
    applied, mmapped, kept = _probe(None)
    assert (applied, mmapped, kept) == ("True", "0", "True")


@pytest.mark.skipif(not _glibc(), reason="mallopt settings are glibc's")
def test_system_keeps_glibcs_defaults():
    applied, mmapped, _ = _probe("system")
    assert (applied, mmapped) == ("False", "1")  # the 64 MB block was mmap'd


def test_an_unknown_setting_is_refused(monkeypatch):
    monkeypatch.setenv(allocator.ENVIRONMENT_VARIABLE, "tcmalloc")
    with pytest.raises(ValueError, match="LEAF_KERAS_MALLOC must be 'reuse' or 'system', got"):
        allocator.reuse_freed_memory()


def test_for_backend_applies_it_on_tensorflow_only(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "reuse_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.delenv(allocator.ENVIRONMENT_VARIABLE, raising=False)
    assert allocator.for_backend("tensorflow") and len(calls) == 1
    assert not allocator.for_backend("jax") and len(calls) == 1
    monkeypatch.setenv(allocator.ENVIRONMENT_VARIABLE, "reuse")
    assert allocator.for_backend("jax") and len(calls) == 2
