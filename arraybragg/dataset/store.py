"""The dataset on disk: a Zarr group with one chunk per frame, per-frame labels and completion markers.

Layout of an output directory ``DIR``::

    DIR/dataset.zarr/images        float32 (frames, slow, fast), chunk (1, slow, fast)
    DIR/dataset.zarr/noise         uint16 (uint32 for [response] bits = 32), same chunks (only with
                                   [noise] poisson = true or a [response] table)
    DIR/dataset.zarr/labels/<name> one array per label (frames, ...), see frames.LABEL_SHAPES
    DIR/done/<index>.json          written after a frame's chunks: their SHA-256

A frame counts as finished only when its marker exists *and* the chunks read back hash to the marker's
checksum, so a chunk half-written by a killed worker, or damaged later, is rendered again.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil

import numpy as np

from ..errors import InputError
from ..io.files import atomic_write
from .spec import DatasetSpec

FORMAT = "arraybragg-dataset/1"


def _zarr():
    import zarr  # imported on use: the rest of arraybragg does not need it
    return zarr


def store_path(out) -> str:
    return os.path.join(os.path.abspath(os.fspath(out)), "dataset.zarr")


def _marker(out, index: int) -> str:
    return os.path.join(os.path.abspath(os.fspath(out)), "done", "%08d.json" % index)


def _create(path: str, spec: DatasetSpec, shape: tuple[int, int], labels: dict) -> None:
    """Write the group (arrays' metadata, labels, spec) under a temporary name, then rename it into place."""
    zarr = _zarr()
    partial = path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    root = zarr.open_group(partial, mode="w")
    frames = (spec.frames,) + tuple(shape)
    root.create_array("images", shape=frames, chunks=(1,) + tuple(shape), dtype="float32", fill_value=0.0)
    if spec.has_noise:
        dtype = "uint32" if spec.response is not None and spec.response.bits == 32 else "uint16"
        root.create_array("noise", shape=frames, chunks=(1,) + tuple(shape), dtype=dtype, fill_value=0)
    group = root.create_group("labels")
    for name, values in labels.items():
        values = np.asarray(values)
        group.create_array(name, shape=values.shape, dtype=values.dtype, chunks=values.shape)[...] = values
    root.attrs.update(format=FORMAT, spec=spec.to_json())
    os.replace(partial, path)


def prepare(out, spec: DatasetSpec, shape: tuple[int, int], labels: dict) -> None:
    """Create the dataset in ``out``, or check that the one there is this description (for a resume)."""
    path = store_path(out)
    try:
        os.makedirs(os.path.join(os.path.dirname(path), "done"), exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out: cannot create '{out}' ({exc.strerror})") from None
    if not os.path.exists(path):
        _create(path, spec, shape, labels)
        return
    stored = _zarr().open_group(path, mode="r").attrs.get("spec")
    if stored != spec.to_json():
        raise InputError(f"--out: '{out}' holds a different dataset (its description differs); use another directory")


@functools.lru_cache(maxsize=8)
def _arrays(path: str, mode: str = "r+"):
    """(images, noise or None) of the store at ``path``, opened once per process."""
    root = _zarr().open_group(path, mode=mode)
    return root["images"], (root["noise"] if "noise" in root else None)


def _checksum(image: np.ndarray, noise) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes())
    if noise is not None:
        digest.update(np.ascontiguousarray(noise).tobytes())  # in the store's integer type
    return digest.hexdigest()


def write_frame(out, index: int, image: np.ndarray, noise=None) -> str:
    """Write one frame's chunks, then its completion marker; returns the checksum."""
    images, noise_array = _arrays(store_path(out))
    images[index] = image
    if noise_array is not None:
        noise = np.asarray(noise, dtype=noise_array.dtype)
        noise_array[index] = noise
    checksum = _checksum(image, noise)
    atomic_write(_marker(out, index), json.dumps(dict(index=index, sha256=checksum)).encode())
    return checksum


def read_frame(out, index: int):
    """(float32 image, integer noise image or None) of frame ``index``."""
    images, noise = _arrays(store_path(out), "r")
    return images[index], (None if noise is None else noise[index])


def frame_finished(out, index: int) -> bool:
    """Whether frame ``index`` is finished: its marker exists and its stored chunks hash to the marker's
    checksum.  A marker that does not match (a damaged or half-written chunk) is removed."""
    path = _marker(out, index)
    if not os.path.exists(path):
        return False
    try:
        with open(path) as fh:
            marker = json.load(fh)
        ok = int(marker["index"]) == index and _checksum(*read_frame(out, index)) == marker["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return ok


def marked_frames(out) -> int:
    """How many completion markers ``out`` holds (not verified: see frame_finished)."""
    directory = os.path.dirname(_marker(out, 0))
    return sum(name.endswith(".json") for name in os.listdir(directory)) if os.path.isdir(directory) else 0


def finished_frames(out, frames: int) -> set[int]:
    """Every verified finished frame (reads and hashes each marked frame here)."""
    return {index for index in range(frames) if frame_finished(out, index)}


def load_labels(out) -> dict[str, np.ndarray]:
    """Every per-frame label of the dataset in ``out`` as NumPy arrays (first axis: frame)."""
    group = _zarr().open_group(store_path(out), mode="r")["labels"]
    return {name: group[name][...] for name in sorted(group.array_keys())}


def stored_spec(out) -> DatasetSpec:
    """The description a dataset was made from."""
    path = store_path(out)
    if not os.path.isdir(path):
        raise InputError(f"{out}: no dataset here (no dataset.zarr)")
    return DatasetSpec.from_json(_zarr().open_group(path, mode="r").attrs["spec"])
