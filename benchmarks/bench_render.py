"""asv benchmarks: render time, peak memory and throughput per backend x dtype policy.

Each class is one case; ``setup`` parses the nanoBragg arguments, builds the
Simulation and the Renderer, so only ``Renderer.render`` is timed.  Setup
raises NotImplementedError (asv's way to skip) when CuPy has no CUDA device or
when a corpus case's inputs are absent.  The corpus is found through
ARRAYBRAGG_REFERENCE, else ../shared/reference beside the repository.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import tempfile
from pathlib import Path

from arraybragg import Renderer, build_simulation, parse_args

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ["numpy", "cupy"]
DTYPES = ["float64", "float32"]

# Synthetic cases: no input files, default_F for every reflection.
SYNTHETIC_CASES = {
    "cubic": "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1 -distance 100 -detpixels 256",
    "triclinic_mosaic": "-cell 70 80 90 75 85 95 -misset 10 20 30 -mosaic 0.5 -mosaic_dom 6"
                        " -default_F 100 -N 5 -lambda 1 -distance 100 -detpixels 256",
}


def reference_dir() -> Path | None:
    """The reference corpus: ARRAYBRAGG_REFERENCE, else ../shared/reference; None when absent."""
    path = Path(os.environ.get("ARRAYBRAGG_REFERENCE", REPO.parent / "shared" / "reference"))
    return path if (path / "cases").is_dir() else None


def require_backend(backend: str) -> None:
    """Skip (NotImplementedError) a CuPy benchmark on a machine without CuPy or a CUDA device."""
    if backend != "cupy":
        return
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise NotImplementedError(f"CuPy with a CUDA device is not available ({exc.__class__.__name__})") from None


@contextlib.contextmanager
def _scratch_dir(inputs: Path | None):
    """Work in a temporary directory holding links to the corpus inputs (Fdump.bin lands there too)."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="arraybragg-bench-") as scratch:
        if inputs is not None:
            for item in inputs.iterdir():
                os.symlink(item, os.path.join(scratch, item.name))
        os.chdir(scratch)
        try:
            yield scratch
        finally:
            os.chdir(cwd)


def case_arguments(name: str) -> tuple[list[str], Path | None]:
    """(nanoBragg arguments, inputs directory or None) of a synthetic or corpus case."""
    if name in SYNTHETIC_CASES:
        return shlex.split(SYNTHETIC_CASES[name]), None
    reference = reference_dir()
    case_file = None if reference is None else reference / "cases" / name / "case.json"
    if case_file is None or not case_file.exists():
        raise NotImplementedError(f"corpus case {name} not found (set ARRAYBRAGG_REFERENCE)")
    return shlex.split(json.loads(case_file.read_text())["args"]), reference / "inputs"


def build_case(name: str):
    """The Simulation of a case, built in a scratch directory."""
    args, inputs = case_arguments(name)
    with _scratch_dir(inputs) as scratch:
        return build_simulation(parse_args(args), workdir=scratch)


def warm_up(renderer: Renderer) -> None:
    """Render one row of the same case so that CuPy compiles its kernels outside the timing."""
    xmin, xmax, ymin, _ = renderer.sim.sampling.roi
    sampling = dataclasses.replace(renderer.sim.sampling, roi=(xmin, xmax, ymin, ymin))
    Renderer(dataclasses.replace(renderer.sim, sampling=sampling), backend=renderer.backend,
             policy=renderer.policy).render()


class _RenderBenchmark:
    """Shared body: one case rendered on each backend with each dtype policy."""

    case = ""
    params = (BACKENDS, DTYPES)
    param_names = ["backend", "dtype"]

    def setup(self, backend, dtype):
        require_backend(backend)
        self.sim = build_case(self.case)
        self.renderer = Renderer(self.sim, backend=backend, policy=dtype)
        if backend == "cupy":
            warm_up(self.renderer)

    def time_render(self, backend, dtype):
        self.renderer.render()

    def track_pixels_per_second(self, backend, dtype):
        result = self.renderer.render()
        return result.stats.pixels / result.seconds

    track_pixels_per_second.unit = "pixels/s"


class RenderCubic(_RenderBenchmark):
    """100 A cubic cell, 256 x 256 pixels, one source, one orientation."""

    case = "cubic"


class RenderTriclinicMosaic(_RenderBenchmark):
    """Triclinic cell with a misset and 6 mosaic domains, 256 x 256 pixels."""

    case = "triclinic_mosaic"


class RenderSupROI(_RenderBenchmark):
    """Corpus case sup_roi: the Pilatus 6M experiment (A.mat, scaled.hkl, 10 phi steps), 81 x 81 ROI."""

    case = "sup_roi"


class RenderSupFull(_RenderBenchmark):
    """Corpus case sup_full: the whole 2463 x 2527 Pilatus 6M frame (seconds per render)."""

    case = "sup_full"
    timeout = 900
    number = 1
    repeat = 3
    rounds = 1
    warmup_time = 0

    def peakmem_render_single_process(self, backend, dtype):
        """One process (threads=1): the image plus one tile's working set.

        asv reads the benchmark process's own peak RSS, which would not see the
        forked workers of a multi-process render; each of those peaks at about
        one tile's working set above the pages it shares with the parent.
        """
        Renderer(self.sim, backend=backend, policy=dtype, threads=1).render()
