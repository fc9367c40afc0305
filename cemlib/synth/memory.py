"""Keep the resident memory of a big generation low: hand freed memory back between steps.

pyarrow's allocator and glibc's malloc both keep freed pages for reuse; between the large
steps of :func:`cemlib.synth.generate` that cached memory only raises the peak, so it is
returned to the operating system.
"""

from __future__ import annotations

import ctypes
import resource

import pyarrow as pa

try:
    _LIBC = ctypes.CDLL("libc.so.6")
except OSError:  # pragma: no cover - not glibc (macOS, musl)
    _LIBC = None


def release() -> None:
    """Return cached free memory of pyarrow and of the C heap to the operating system."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def peak_gib() -> float:
    """Peak resident memory of this process so far, GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def rss_gib() -> float:
    """Current resident memory, GiB (NaN where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 1024**3
    except OSError:  # pragma: no cover - not Linux
        return float("nan")
