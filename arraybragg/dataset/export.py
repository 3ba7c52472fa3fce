"""Export frames of a dataset to nanoBragg's single-image files (raw floats, SMV, SMV noise)."""
from __future__ import annotations

import os
from typing import Iterable, Sequence

from ..outputs import images as outputs
from ..io import smv
from ..render.renderer import compute_stats
from ..outputs.headers import smv_header_for
from ..errors import InputError
from . import store
from .frames import build_base, frame_simulation

FORMATS = ("float", "smv", "noise")


def parse_frames(text: str, frames: int) -> range:
    """'7' -> frame 7; 'A:B' -> frames A..B-1 (either side may be left out, as a Python slice)."""
    try:
        if ":" in text:
            start, stop = text.split(":", 1)
            return range(frames)[slice(int(start) if start else None, int(stop) if stop else None)]
        index = int(text)
    except ValueError:
        raise InputError(f"--frames: expected N or START:STOP, got {text!r}") from None
    if not 0 <= index < frames:
        raise InputError(f"--frames: frame {index} is outside 0..{frames - 1}")
    return range(index, index + 1)


def export_frames(out, frames: Iterable[int], dest, formats: Sequence[str] = FORMATS) -> list[str]:
    """Write ``dest/frame_NNNNNN.bin`` (float32), ``.img`` (SMV, nanoBragg's scaling) and
    ``_noise.img`` for each frame; returns the paths written.  SMV headers are the frame's geometry."""
    for name in formats:
        if name not in FORMATS:
            raise InputError(f"--formats: unknown format {name!r} (known: {', '.join(FORMATS)})")
    spec = store.stored_spec(out)
    finished = store.finished_frames(out, spec.frames)
    frames = list(frames)
    missing = [i for i in frames if i not in finished]
    if missing:
        raise InputError(f"--frames: frame {missing[0]} is not finished in '{out}'")
    if "noise" in formats and not spec.has_noise:
        raise InputError("--formats: noise asked for, but this dataset has no noise images")
    base = build_base(spec)
    os.makedirs(dest, exist_ok=True)
    written = []
    for index in frames:
        image, noise = store.read_frame(out, index)
        stem = os.path.join(dest, "frame_%06d" % index)
        if "float" in formats:
            outputs.write_float_image(stem + ".bin", image)
            written.append(stem + ".bin")
        if "smv" in formats or "noise" in formats:
            sim, _ = frame_simulation(base, spec, index)
            header = smv_header_for(sim)
        if "smv" in formats:
            scale = base.intfile_scale or outputs.auto_int_scale(compute_stats(image, sim, 0.0).max_I)
            smv.write_smv(stem + ".img", outputs.int_image(image, scale, base.adc_offset, sim.sampling.roi), header)
            written.append(stem + ".img")
        if "noise" in formats:
            smv.write_smv(stem + "_noise.img", noise, header)  # long_integer for a 32-bit [response]
            written.append(stem + "_noise.img")
    return written
