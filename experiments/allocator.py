"""Makes glibc's malloc keep freed memory, so that each training step reuses its pages.

XLA on CPU, under TensorFlow and JAX alike, allocates a step's temporaries with ``malloc``
and frees them when the step ends. glibc serves every block above its mmap threshold
(128 KB, rising to at most 32 MB) with freshly mapped pages and unmaps them on ``free``, and
threads allocate from arenas that also return memory: so every step faults its buffers in
again, 4 KB at a time, and the kernel zeroes each page. For the exact LEAF step (about 1 GB
of temporaries at 64 × 1 s) that is about half of the step's time on a 2-core machine.

`reuse_freed_memory` sets, with ``mallopt``, one arena for all threads
(``M_ARENA_MAX = 1``), no mmap'd blocks (``M_MMAP_MAX = 0``) and no trimming of the heap
(``M_TRIM_THRESHOLD`` at its maximum): from the second step on, the step's buffers are pages
the process already has. The arena limit binds only threads that have not allocated yet, so
it is set before the first step. The cost is that the process keeps its peak memory
resident, which a training process reaches at every step anyway.

Measured with ``python benchmarks/benchmark_frontends.py --malloc reuse`` against
``--malloc system`` (benchmarks/README.md, an AVX2 machine, 2 cores): on TensorFlow the exact
LEAF step went from 1.21 to 0.60 s at 64 × 1 s and from 1.39 to 0.82 s at 8 × 10 s, the
band-limited one from 0.17 to 0.10 s, with the same step peak memory. On JAX the exact step
went from 1.57 to 0.69 s at 64 × 1 s but its step peak doubled (1.3 to 2.6 GB: one heap
fragments under JAX's allocation pattern), so `for_backend` applies it on TensorFlow only.
``LEAF_KERAS_MALLOC=system`` in the environment keeps glibc's defaults, ``reuse`` applies it
on any backend. Elsewhere than glibc (macOS, musl) it does nothing.
"""

import ctypes
import ctypes.util
import os

ENVIRONMENT_VARIABLE = "LEAF_KERAS_MALLOC"
# Where the settings were measured to pay without costing memory (see above).
REUSE_BACKENDS = ("tensorflow",)
# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))


def _glibc():
    """The C library if it is glibc (it has ``mallopt`` and ``gnu_get_libc_version``)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version")):
        return None
    return libc


def reuse_freed_memory():
    """Sets glibc's malloc to keep and reuse freed memory (see the module docstring).

    Returns:
        True if the settings were applied; False where the C library is not glibc, where
        ``LEAF_KERAS_MALLOC=system`` asks for glibc's defaults, or if glibc refused one.

    Raises:
        ValueError: for a ``LEAF_KERAS_MALLOC`` other than "reuse" or "system".
    """
    choice = os.environ.get(ENVIRONMENT_VARIABLE, "reuse")
    if choice not in ("reuse", "system"):
        raise ValueError(f"{ENVIRONMENT_VARIABLE} must be 'reuse' or 'system', got {choice!r}.")
    libc = None if choice == "system" else _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in _SETTINGS)


def for_backend(backend):
    """`reuse_freed_memory()` on a backend of `REUSE_BACKENDS` (or any, with
    ``LEAF_KERAS_MALLOC=reuse``); else nothing. Returns whether it was applied."""
    if backend in REUSE_BACKENDS or os.environ.get(ENVIRONMENT_VARIABLE) == "reuse":
        return reuse_freed_memory()
    return False
