"""Tell glibc's malloc to keep freed memory, so a training step reuses pages instead of
faulting in fresh ones.

A CPU training step allocates and frees the same few-megabyte tensors every step (activations,
dropout masks, gradients). Under glibc's defaults the largest come from mmap and go back to the
kernel when freed, and the heap is trimmed; the next step then takes a page fault, and a page of
zeros from the kernel, on every 4 KiB it touches: up to 4,000 faults per step of ``baseline``
(bench/RESULTS.md, "The heap kept"). With an mmap threshold above any tensor of a small net's
step and no trimming, they come from the heap and stay mapped: under 300 faults per step, and
5-7% more images/s.

PyTorch's CPU performance guide gets the same by preloading an allocator that keeps freed
memory (jemalloc, tcmalloc); here it is three ``mallopt`` calls, made by ``nas.train.train``.
The price is that the process keeps the memory of its largest step until it exits.
``NAS_KEEP_HEAP=0`` turns it off; on a C library other than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD = 1 << 30  # never trim in practice
TOP_PAD = 64 << 20  # grow the heap in large steps: fewer brk calls


@functools.cache
def keep_freed_memory() -> bool:
    """Apply the settings once per process; True when they are in force."""
    if os.environ.get("NAS_KEEP_HEAP", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own C library, with no search for it
        libc.gnu_get_libc_version  # noqa: B018  (AttributeError: not glibc)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(opt, value) == 1 for opt, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD)))
