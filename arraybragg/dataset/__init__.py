"""Many-image datasets (rotation series, serial stills) rendered on Dask into a Zarr store.

Typical use::

    from arraybragg.dataset import load_spec, run_dataset, load_labels, read_frame
    spec = load_spec("stills.toml")
    report = run_dataset(spec, "out/")       # a LocalCluster sized to the machine
    labels = load_labels("out/")             # per-frame rotation, A_star, cell, N, wavelength, ...
    image, noise = read_frame("out/", 0)

See docs/datasets.md.
"""
from .engine import DatasetReport, frame_labels, run_dataset
from .export import export_frames
from .frames import Base, Frame, build_base, frame_simulation, render_frame
from .spec import DatasetSpec, load_spec, spec_from_dict
from .store import finished_frames, load_labels, read_frame, stored_spec

__all__ = [
    "Base", "DatasetReport", "DatasetSpec", "Frame", "build_base", "export_frames", "finished_frames",
    "frame_labels", "frame_simulation", "load_labels", "load_spec", "read_frame", "render_frame",
    "run_dataset", "spec_from_dict", "stored_spec",
]
