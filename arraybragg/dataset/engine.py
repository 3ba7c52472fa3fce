"""Running a dataset on Dask: one task per missing frame, rendered and stored by the workers.

By default an embedded ``distributed.LocalCluster`` sized to the machine (one single-threaded worker
process per core: every render runs with ``threads=1``, so the cores are not oversubscribed); with
``scheduler`` an existing cluster (dask-jobqueue, Kubernetes, ``dask scheduler`` + ``dask worker``),
whose workers must see ``out`` on a shared file system.  The base Simulation (structure factors and
geometry) is built once here and scattered to every worker once.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..backend import default_threads
from . import store
from .frames import INTEGER_LABELS, Base, build_base, frame_simulation, label_names, render_frame
from .spec import DatasetSpec


@dataclass
class DatasetReport:
    frames: int
    rendered: list = field(default_factory=list)   # indices rendered by this run, in completion order
    skipped: list = field(default_factory=list)    # indices found finished (verified) and not rendered, sorted
    seconds: float = 0.0                           # wall time of the tasks (cluster start excluded)
    dashboard: Optional[str] = None

    @property
    def frames_per_second(self) -> float:
        return len(self.rendered) / self.seconds if self.seconds > 0 else 0.0


def frame_labels(base: Base, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """Every label of every frame, computed here (cheap: no render), each (frames, *shape)."""
    columns = {name: [] for name in label_names(spec)}
    for index in range(spec.frames):
        _, labels = frame_simulation(base, spec, index)
        for name in columns:
            columns[name].append(labels[name])
    return {name: np.asarray(values, dtype=np.int64 if name in INTEGER_LABELS else np.float64)
            for name, values in columns.items()}


def ensure_frame(base: Base, spec: DatasetSpec, index: int, out: str) -> tuple[int, bool, float]:
    """The task a worker runs: verify frame ``index`` in the store and, unless it is finished, render it
    and write it (chunks, then marker).  Returns (index, rendered?, seconds of the render)."""
    if store.frame_finished(out, index):
        return index, False, 0.0
    frame = render_frame(base, spec, index)
    store.write_frame(out, index, frame.image, frame.noise)
    return index, True, frame.seconds


@contextlib.contextmanager
def _client(scheduler: Optional[str], workers: Optional[int], backend: str):
    """A distributed Client: on ``scheduler``, or on a LocalCluster (LocalCUDACluster for CuPy if present)."""
    from distributed import Client, LocalCluster
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    cluster = None
    if backend == "cupy" and workers is None:
        with contextlib.suppress(ImportError):
            from dask_cuda import LocalCUDACluster
            cluster = LocalCUDACluster(dashboard_address=":0")
    if cluster is None:
        cluster = LocalCluster(n_workers=workers or default_threads(), threads_per_worker=1, processes=True,
                               dashboard_address=":0")
    with cluster, Client(cluster) as client:
        yield client


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm
    # disable=None: tqdm shows nothing when stderr is not a terminal
    return tqdm(total=total, unit="frame", disable=None if enabled else True,
                file=sys.stderr, smoothing=0.1)


def _dashboard(client) -> Optional[str]:
    with contextlib.suppress(Exception):
        return client.dashboard_link
    return None


def run_dataset(spec: DatasetSpec, out, *, scheduler: Optional[str] = None, client=None,
                workers: Optional[int] = None, progress: bool = True,
                log: Callable[[str], None] = lambda line: None,
                on_frame: Optional[Callable[[int], None]] = None) -> DatasetReport:
    """Render every unfinished frame of ``spec`` into ``out`` on Dask; returns what was done.

    ``client``: an existing ``distributed.Client`` (else one is made on ``scheduler`` or a LocalCluster
    of ``workers`` single-threaded processes).  ``on_frame(index)`` runs here as each frame is stored.
    """
    out = os.path.abspath(os.fspath(out))
    base = build_base(spec)
    store.prepare(out, spec, base.sim.detector.shape, frame_labels(base, spec))
    report = DatasetReport(frames=spec.frames)
    log("%d frames, %d marked finished (the workers verify them)" % (spec.frames, store.marked_frames(out)))
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(_client(scheduler, workers, base.backend))
        report.dashboard = _dashboard(client)
        if report.dashboard:
            log("Dask dashboard: %s" % report.dashboard)
        _run(client, base, spec, out, report, stack.enter_context(_progress_bar(spec.frames, progress)), on_frame)
    report.skipped.sort()
    return report


def _run(client, base, spec, out, report, bar, on_frame) -> None:
    """One task per frame (finished ones are only verified, on the workers, in parallel)."""
    from distributed import as_completed
    start = time.perf_counter()
    shared = client.scatter(base, broadcast=True, hash=False)
    run = uuid.uuid4().hex[:8]
    futures = [client.submit(ensure_frame, shared, spec, index, out, key="frame-%08d-%s" % (index, run),
                             pure=False) for index in range(spec.frames)]
    for future in as_completed(futures):
        index, rendered, _ = future.result()
        future.release()
        (report.rendered if rendered else report.skipped).append(index)
        bar.update(1)
        if on_frame and rendered:
            on_frame(index)
    report.seconds = time.perf_counter() - start
