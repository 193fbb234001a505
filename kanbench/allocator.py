"""Worker processes keep the memory they free, so a step does not page-fault.

glibc's malloc serves every block above its *mmap threshold* (128 KiB at start, raised
dynamically up to 32 MiB) with a fresh ``mmap`` and hands it back to the kernel on ``free``;
memory freed at the top of its heap beyond the *trim threshold* goes back too. A training
step frees and allocates the same large blocks again every time (``zero_grad(set_to_none=True)``
drops the gradients, autograd's buffers die with the graph), so under the defaults every
step faults its pages in afresh and the kernel zeroes them. At the ``large`` workload
(1000x1000x1, batch 100) on a 2-core VM that was 8,900-9,900 minor page faults and 16-19 ms
of system time per step -- about a fifth of the step's CPU time -- and the backward took
20-21 ms instead of 14-16 (``benchmarks/page_faults.py``); kernel time moves with the
machine's state, not with the code. PyTorch's CPU performance-tuning guide recommends an allocator
that reuses memory (jemalloc, tcmalloc) for the same reason.

:func:`keep_freed_memory` (called by every worker before it imports torch) raises both
thresholds with ``mallopt``, so freed blocks stay in the process and are reused. It leaves
the allocator alone when you chose one: ``KANBENCH_MALLOC=system`` (glibc's defaults),
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` / ``GLIBC_TUNABLES`` in the
environment, or a preloaded jemalloc/tcmalloc (``LD_PRELOAD``). What each row ran with is
kept in its ``allocator`` field, and its page faults per step in ``minor_faults_per_step``.
"""

from __future__ import annotations

import ctypes
import os
from typing import Optional

#: mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: the largest value mallopt takes (an int): 2 GiB
KEEP_BYTES = 2**31 - 1
#: the largest mmap threshold some glibc versions accept (half their 64 MiB heap)
GLIBC_CAP_BYTES = 32 * 2**20

#: what this process runs with; ``None`` until :func:`keep_freed_memory` ran here
_setting: Optional[str] = None


def _mib(n: int) -> str:
    return f"{n / 2**30:.0f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def user_choice(env: Optional[dict] = None) -> Optional[str]:
    """How the user set the allocator up themselves, or ``None`` (then workers keep freed memory)."""
    env = os.environ if env is None else env
    if env.get("KANBENCH_MALLOC", "").strip().lower() == "system":
        return "system default (KANBENCH_MALLOC=system)"
    named = [k for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_") if k in env]
    if "glibc.malloc" in env.get("GLIBC_TUNABLES", ""):
        named.append("GLIBC_TUNABLES")
    if named:
        return "as set in the environment (" + ", ".join(f"{k}={env[k]}" for k in named) + ")"
    preload = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if "malloc" in os.path.basename(p)]
    if preload:
        return "preloaded " + " ".join(os.path.basename(p) for p in preload)
    return None


def _glibc_mallopt():
    """glibc's ``mallopt``, or ``None`` when this is not glibc (macOS, musl)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt


def keep_freed_memory() -> str:
    """Make this process's malloc keep freed memory (see the module's text); returns what it runs with.

    Call it before large allocations begin (workers call it first thing)."""
    global _setting
    _setting = user_choice()
    if _setting is not None:
        return _setting
    mallopt = _glibc_mallopt()
    if mallopt is None:
        _setting = "system default (not glibc)"
        return _setting
    for threshold in (KEEP_BYTES, GLIBC_CAP_BYTES):
        if mallopt(M_MMAP_THRESHOLD, threshold) == 1:
            break
    else:
        _setting = "system default (mallopt refused the mmap threshold)"
        return _setting
    # only once the mmap threshold took: a trim threshold alone would freeze the mmap
    # threshold at 128 KiB and make every larger block an mmap
    mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)
    _setting = f"glibc, freed memory kept (mmap threshold {_mib(threshold)}, trim threshold {_mib(KEEP_BYTES)})"
    return _setting


def setting() -> str:
    """What this process's allocator runs with (``system default`` where nothing was changed)."""
    return _setting if _setting is not None else (user_choice() or "system default")


def minor_faults() -> Optional[int]:
    """Minor page faults of this process so far (all threads), or ``None`` where unreadable."""
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
    except (ImportError, OSError, AttributeError):
        return None
