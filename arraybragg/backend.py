"""Array backends and dtype policies.

Physics code never imports NumPy or CuPy: it receives arrays and asks
``array_namespace`` for their namespace.  The two small objects here are the
only places that know which library and which precision a render uses.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import array_api_compat

from .errors import InputError

__all__ = ["Backend", "DtypePolicy", "get_backend", "get_policy", "array_namespace", "device",
           "keep_freed_host_memory", "default_threads"]


def default_threads() -> int:
    """All cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Backend:
    """An array library: where arrays live and how they move to and from the host."""

    name: str
    xp: object
    # Work per tile, in (pixel x orientation) evaluations: cache-sized on a CPU, large on a GPU.
    tile_elements: int = 1 << 15
    # Per-pixel geometry runs on this many tiles' worth of pixels at once (fewer small calls).
    geometry_batch: int = 8
    # Tricubic chunks are this many times larger: their ~400 array operations per chunk made the
    # per-call overhead dominate at the cache-sized chunk (measured on the CPU: 2^17 evaluations
    # 12-20% faster than 2^15, 2^18 no better).
    tricubic_chunk_factor: int = 4
    # Whether tiles may be spread over forked host worker processes (CPU arrays only).
    host_workers: bool = True
    # Whether float32 sines of reduced arguments are polynomials (10 in-place passes, 25% less time
    # than NumPy's SIMD sin) rather than the library's sin (one pass: fewer kernel launches on a GPU).
    polynomial_sin: bool = True
    # Where the arrays live (None: the namespace's default device).
    device: object = None

    def asarray(self, values, dtype=None):
        """Host data (NumPy array, list, scalar) -> array of this backend, on its device."""
        return self.xp.asarray(values if dtype is None else np.asarray(values), dtype=dtype, device=self.device)

    def to_numpy(self, array) -> np.ndarray:
        """Array of this backend -> host NumPy array (copy only when needed)."""
        if isinstance(array, np.ndarray):
            return array
        if self.name == "cupy":
            return array.get()
        return np.from_dlpack(array)  # any namespace, any host-visible device

    def quiet(self):
        """Context that silences NumPy's floating-point warnings (0/0 at exact lattice points is
        handled explicitly; array_api_strict computes with NumPy too; CuPy never warns)."""
        return np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore")


# NumPy 2.1+ implements the array API standard in its main namespace (astype(copy=), permute_dims,
# concat, atan2, ...), so it is used directly: array_api_compat's NumPy wrapper costs ~0.17 s to
# import (it probes every NumPy attribute, importing numpy.testing, f2py, ...) and a few
# microseconds per call.  Older NumPy goes through the wrapper.
_NUMPY_IS_STANDARD = tuple(int(part) for part in np.__version__.split(".")[:2]) >= (2, 1)


def array_namespace(*arrays):
    """The array-API namespace of ``arrays`` (array_api_compat's, or NumPy itself on NumPy 2.1+)."""
    if _NUMPY_IS_STANDARD and all(isinstance(a, np.ndarray) for a in arrays):
        return np
    return array_api_compat.array_namespace(*arrays)


def device(array):
    """The device an array lives on, for creating new arrays beside it."""
    return array_api_compat.device(array)


_HEAP_TUNED = False
# glibc mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_host_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of returning it to the system.

    A NumPy render allocates and frees hundreds of thousands of temporaries of 0.1-1 MB.  By
    default glibc serves blocks above 128 KiB with fresh mmap calls (unless an earlier large
    free happened to raise that threshold), so every temporary costs page faults: measured on
    sup_full, 3x the render's system time and up to 2x its wall time.  Blocks up to 32 MiB now
    come from the heap, which grows in 64 MiB steps and is trimmed only beyond 128 MiB free.
    Process-wide and once; a no-op (False) without glibc.
    """
    global _HEAP_TUNED
    if not _HEAP_TUNED:
        try:
            import ctypes
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError, TypeError):  # no C library handle or no mallopt (not glibc)
            return False
        mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        mallopt(_M_TOP_PAD, 64 << 20)
        mallopt(_M_TRIM_THRESHOLD, 128 << 20)
        _HEAP_TUNED = True
    return True


BYTES_PER_EVALUATION = 512   # device scratch per (pixel x orientation) evaluation: ~40 float64 temporaries,
#                              with a factor 1.6 for allocator slack


def tile_elements_for(free_bytes: int) -> int:
    """Evaluations per tile on a device with ``free_bytes`` free: a quarter of it as scratch, as a power
    of two between 2^18 (launch overhead) and 2^26 (no gain beyond, and room for other work)."""
    elements = max(int(free_bytes) // 4 // BYTES_PER_EVALUATION, 1)
    return 1 << min(max(elements.bit_length() - 1, 18), 26)


def get_backend(name: str = "numpy", device=None) -> Backend:
    """Backend by name: 'numpy', 'cupy' or 'array_api_strict' (tests); ``device``: where its arrays live
    (a device object of that namespace; None: its default)."""
    if name == "numpy":
        if _NUMPY_IS_STANDARD:
            return Backend(name, np, device=device)
        import array_api_compat.numpy as xp
        return Backend(name, xp, device=device)
    if name == "cupy":
        try:
            import array_api_compat.cupy as xp
            import cupy

            cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # no CuPy or no CUDA device
            raise InputError(f"--backend cupy: CuPy with a CUDA device is not available ({exc.__class__.__name__})") from None
        free_bytes, _ = cupy.cuda.runtime.memGetInfo()
        return Backend(name, xp, tile_elements=tile_elements_for(free_bytes), geometry_batch=1,
                       tricubic_chunk_factor=1, host_workers=False, polynomial_sin=False, device=device)
    if name == "array_api_strict":
        import array_api_strict as xp
        return Backend(name, xp, host_workers=False, device=device)
    if name == "torch":
        try:
            import array_api_compat.torch as xp
        except ImportError:
            raise InputError("--backend torch: PyTorch is not installed") from None
        return Backend(name, xp, host_workers=False, device=device)
    raise InputError(f"--backend: unknown backend '{name}' (numpy, cupy, torch)")


@dataclass(frozen=True)
class DtypePolicy:
    """Which precision each stage of a render uses.

    Geometry (pixel positions, scattering vectors) and the fractional Miller
    indices are always float64: h reaches ~100 and a float32 h would put
    errors of ~1e-5 into the lattice transform.  ``lattice`` is the dtype of
    the per-(pixel, phi, mosaic) work after the indices have been reduced to
    their distance from the nearest integer (or, for small rotations, split
    into an exact float64 reference and a small increment), where float32 is
    safe.
    """

    name: str
    lattice: str
    exact_sin: bool  # sin(pi t) by a float64-accurate polynomial on every backend (else Backend.polynomial_sin)

    def lattice_dtype(self, xp):
        return getattr(xp, self.lattice)


FLOAT64 = DtypePolicy("float64", "float64", exact_sin=True)
FLOAT32 = DtypePolicy("float32", "float32", exact_sin=False)


def get_policy(name: str = "float64") -> DtypePolicy:
    """Dtype policy by name: 'float64' (parity, default) or 'float32' (speed)."""
    policies = {"float64": FLOAT64, "float32": FLOAT32}
    if name not in policies:
        raise InputError(f"--dtype: unknown dtype policy '{name}' (float64, float32)")
    return policies[name]


