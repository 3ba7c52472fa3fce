"""Shared fixtures: the reference corpus location and the array-namespace fixture."""
from __future__ import annotations

import gzip
import json
import os
import shlex
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def reference_dir() -> Path | None:
    """ARRAYBRAGG_REFERENCE, else ../shared/reference beside the repo; None when absent."""
    path = Path(os.environ.get("ARRAYBRAGG_REFERENCE", REPO.parent / "shared" / "reference"))
    return path if (path / "cases").is_dir() else None


REFERENCE = reference_dir()
NO_REFERENCE = "reference corpus not found (set ARRAYBRAGG_REFERENCE or put it at ../shared/reference)"


class Case:
    """One corpus case: its nanoBragg arguments and the C program's outputs."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.id = directory.name
        self.meta = json.loads((directory / "case.json").read_text())
        self.args = shlex.split(self.meta["args"])
        self.shape = (self.meta["slow_pixels"], self.meta["fast_pixels"])

    def has(self, name: str) -> bool:
        return (self.dir / name).exists()

    def read_bytes(self, name: str) -> bytes:
        data = (self.dir / name).read_bytes()
        return gzip.decompress(data) if name.endswith(".gz") else data

    def float_image(self, c_parity: bool = False) -> np.ndarray:
        name = "float_c_parity.bin.gz" if c_parity else "float.bin.gz"
        return np.frombuffer(self.read_bytes(name), dtype="<f4").reshape(self.shape)


def corpus_cases() -> list[Case]:
    if REFERENCE is None:
        return []
    return [Case(d) for d in sorted((REFERENCE / "cases").iterdir()) if (d / "case.json").exists()]


def link_inputs(workdir: Path) -> None:
    """Make the corpus inputs reachable by relative name from workdir (symlinks, never copies)."""
    for item in (REFERENCE / "inputs").iterdir():
        target = workdir / item.name
        if not target.exists():
            target.symlink_to(item)


def image_mismatch(image: np.ndarray, reference: np.ndarray, rel: float, floor: float):
    """(number of pixels out of tolerance, worst error relative to the tolerance)."""
    ref = reference.astype(np.float64)
    diff = np.abs(image.astype(np.float64) - ref)
    tol = np.maximum(rel * np.abs(ref), floor * np.abs(ref).max())
    ratio = diff / np.where(tol > 0, tol, 1.0)
    return int(np.count_nonzero(diff > tol)), float(ratio.max()) if ratio.size else 0.0


def write_smooth_hkl(path, span=3):
    """An HKL list over [-span, span]^3 whose F varies smoothly (tricubic interpolation tests)."""
    with open(path, "w") as fh:
        for h in range(-span, span + 1):
            for k in range(-span, span + 1):
                for l in range(-span, span + 1):
                    fh.write("%d %d %d %g\n" % (h, k, l, 100.0 + 10 * h - 5 * k + 3 * l + h * k))


def _namespaces():
    params = [pytest.param("numpy", id="numpy"), pytest.param("array_api_strict", id="array_api_strict")]
    try:
        import torch  # noqa: F401
        params.append(pytest.param("torch", id="torch"))
    except ImportError:
        params.append(pytest.param("torch", id="torch", marks=pytest.mark.skip(reason="PyTorch not installed")))
    try:
        import cupy  # noqa: F401

        cupy.cuda.runtime.getDeviceCount()
        params.append(pytest.param("cupy", id="cupy", marks=pytest.mark.gpu))
    except Exception:
        params.append(pytest.param("cupy", id="cupy", marks=pytest.mark.skip(reason="CuPy with a CUDA device not available")))
    return params


@pytest.fixture(params=_namespaces())
def backend(request):
    """An arraybragg Backend for every namespace the physics must run on."""
    from arraybragg.backend import get_backend

    return get_backend(request.param)


@pytest.fixture
def xp(backend):
    return backend.xp
