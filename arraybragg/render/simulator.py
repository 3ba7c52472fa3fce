"""The simulator object: an :class:`~arraybragg.models.Experiment` rendered panel by panel, still or swept.

    from arraybragg import Simulator
    images = Simulator(experiment, backend="numpy", dtype="float64").render()
    images[0]                 # panel 0: photons per pixel, (slow, fast), in the backend's namespace
    images.to_numpy()         # one NumPy array per panel

Each panel renders as its own lab-frame simulation (same sources, orientations,
steps and normalisation), so a detector split into panels gives the pixels of the
whole.  ``progress`` is a ``progress(done, total)`` callable counting pixels over
all panels (and frames of a sweep), or ``True`` for a bar on stderr.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import numpy as np

from ..backend import Backend, DtypePolicy, get_backend, get_policy
from ..models.experiment import Experiment
from ..models.lab import Simulation
from .progress import terminal_progress
from .renderer import RenderResult, Renderer

Progress = Union[None, bool, Callable[[int, int], None]]


@dataclass
class Images:
    """One render of every panel: arrays in the backend's namespace and on its device, and statistics."""

    arrays: list
    results: list[RenderResult]
    backend: Backend

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, panel: int):
        return self.arrays[panel]

    def __iter__(self):
        return iter(self.arrays)

    def to_numpy(self) -> list[np.ndarray]:
        """The panels' images on the host, float32 (slow, fast)."""
        return [result.image for result in self.results]


class Simulator:
    """Renders an Experiment with one backend and dtype policy (``--c-parity`` behaviour when ``c_parity``)."""

    def __init__(self, experiment: Experiment, backend: Union[Backend, str] = "numpy",
                 dtype: Union[DtypePolicy, str] = "float64", threads: Optional[int] = None, c_parity: bool = False):
        self.experiment = experiment
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.policy = get_policy(dtype) if isinstance(dtype, str) else dtype
        self.threads = threads
        self.c_parity = c_parity

    def simulation(self, panel: int = 0, experiment: Optional[Experiment] = None) -> Simulation:
        """The lab-frame simulation of one panel (what the renderer takes)."""
        return (experiment or self.experiment).panel_simulation(panel, c_parity=self.c_parity)

    def render(self, progress: Progress = None) -> Images:
        """Every panel of the experiment, once."""
        return self._render_all([self.experiment], _progress(progress))[0]

    def render_sweep(self, frames: int, progress: Progress = None) -> list[Images]:
        """``frames`` adjacent oscillations: frame i starts i x oscillation_deg after phi_start_deg."""
        if int(frames) != frames or frames < 1:
            raise ValueError(f"frames: expected a positive whole number, got {frames!r}")
        goniometer = self.experiment.goniometer
        experiments = [self.experiment.replace(goniometer=goniometer.frame(i)) for i in range(int(frames))]
        return self._render_all(experiments, _progress(progress))

    def _render_all(self, experiments: Sequence[Experiment], progress) -> list[Images]:
        panels = len(self.experiment.detector)
        total = len(experiments) * sum(p.size[0] * p.size[1] for p in self.experiment.detector)
        done = 0
        renders = []
        for experiment in experiments:
            results = []
            for index in range(panels):
                renderer = Renderer(self.simulation(index, experiment), self.backend, self.policy,
                                    threads=self.threads)
                pixels = experiment.detector[index].size[0] * experiment.detector[index].size[1]
                results.append(renderer.render(progress=_scaled(progress, done, pixels, total)))
                done += pixels
            renders.append(Images([self.backend.asarray(r.image) for r in results], results, self.backend))
        return renders


def _progress(progress: Progress):
    if progress is True:
        return terminal_progress(sys.stderr) if sys.stderr.isatty() else None
    return progress or None


def _scaled(progress, offset: int, pixels: int, total: int):
    """A panel's progress(done, rendered) reported as its share of all panels' pixels."""
    if progress is None:
        return None
    return lambda done, rendered: progress(offset + pixels * done // max(rendered, 1), total)
