"""Structure factors from crystallographic files (MTZ, mmCIF, PDB) through gemmi.

``-hkl FILE`` accepts, besides nanoBragg's ``h k l F`` text lists (:mod:`arraybragg.hkl`):

* MTZ files: one amplitude column (``--mtz-column LABEL``; by default the first
  F-type column, or the square root of the first intensity column, with a warning);
* mmCIF structure-factor files (``_refln`` loops): converted to MTZ by gemmi, then as MTZ;
* coordinate models (PDB or mmCIF): |F_calc| computed by gemmi (X-ray form factors,
  FFT of the model density) out to a resolution the caller gives (the detector's).

Symmetry-unique data are expanded to P1 with gemmi from the file's space group and
completed with Friedel mates, then put on an :class:`~arraybragg.io.hkl.HKLGrid`
exactly as a P1 text list of the same reflections would be.  The file's unit cell
comes back with the grid so that a caller can use it when no cell was given.
"""
from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .hkl import HKLGrid

__all__ = ["FileStructureFactors", "file_format", "read_structure_factors", "read_mtz", "read_sf_mmcif",
           "fcalc_from_model", "grid_from_reflections"]

TEXT, MTZ, SF_MMCIF, MODEL = "text", "mtz", "sf-mmcif", "model"
_MAX_GRID_POINTS = 1 << 31  # 16 GiB of doubles, as for text lists


@dataclass
class FileStructureFactors:
    """A P1 grid read from a crystallographic file, with the file's cell and space group."""

    grid: HKLGrid
    cell: tuple[float, float, float, float, float, float]   # a, b, c (Angstrom), alpha, beta, gamma (deg)
    spacegroup: str
    source: str                                             # what was read: column label or "F_calc to d A"
    warnings: list[str]


def file_format(path) -> str:
    """The kind of ``-hkl`` file: "mtz", "sf-mmcif", "model" or "text" (nanoBragg's list).

    Decided by content (the MTZ magic number, mmCIF ``_refln.`` / ``_atom_site.``
    categories, PDB records), looking inside gzip files.
    """
    try:
        with open(path, "rb") as stream:
            head = stream.read(1 << 16)
        if head.startswith(b"\x1f\x8b"):  # gzip (PDB's r1abcsf.ent.gz, 1abc.cif.gz): gemmi reads it as is
            with gzip.open(path, "rb") as stream:
                head = stream.read(1 << 16)
    except (OSError, EOFError) as exc:
        raise InputError(f"-hkl: cannot open '{os.fspath(path)}' ({getattr(exc, 'strerror', None) or exc})") from None
    if head.startswith(b"MTZ "):
        return MTZ
    text = head.decode("latin-1")
    if text.lstrip().startswith("data_") or "\ndata_" in text:  # mmCIF: reflections, else a model
        return SF_MMCIF if "_refln." in text or "_refln_" in text else MODEL
    if any(line.startswith(("ATOM  ", "HETATM", "CRYST1")) for line in text.splitlines()):
        return MODEL
    return TEXT


def _one_line(exc: Exception) -> str:
    """gemmi's message on one line (it may quote the offending line after a newline)."""
    return " ".join(str(exc).split())


def _gemmi():
    import gemmi  # imported only for these files: keeps the CLI start-up short for text lists
    return gemmi


def _cell_tuple(cell) -> tuple[float, ...]:
    return (cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)


def grid_from_reflections(hkl: np.ndarray, F: np.ndarray, default_F: float = 0.0) -> HKLGrid:
    """An HKLGrid from P1 reflections (n x 3 integer indices, n amplitudes), as a text list would give.

    The grid spans min..max of each index plus the C's extra zero slab; indices
    absent from the list keep ``default_F``.  ``count`` is the number of reflections.
    """
    hkl = np.asarray(hkl, dtype=np.int64).reshape(-1, 3)
    if not len(hkl):
        raise InputError("-hkl: the file holds no reflections")
    lows, highs = hkl.min(axis=0), hkl.max(axis=0)
    ranges = highs - lows + 1
    shape = tuple(int(r) + 1 for r in ranges)
    if math.prod(shape) > _MAX_GRID_POINTS:
        raise InputError(f"-hkl: index ranges {shape} are too large for a grid of structure factors")
    F_grid = np.zeros(shape, dtype=np.float64)
    if default_F != 0.0:
        F_grid[:ranges[0], :ranges[1], :ranges[2]] = default_F
    offsets = hkl - lows
    F_grid[offsets[:, 0], offsets[:, 1], offsets[:, 2]] = np.asarray(F, dtype=np.float64)
    return HKLGrid(F_grid, int(lows[0]), int(highs[0]), int(lows[1]), int(highs[1]), int(lows[2]),
                   int(highs[2]), len(hkl))


def _p1_with_friedel(mtz, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Reflections of one MTZ column expanded to P1 (gemmi) plus their Friedel mates, missing values dropped."""
    mtz.expand_to_p1()
    hkl = np.asarray(mtz.make_miller_array(), dtype=np.int64)
    values = np.asarray(mtz.column_with_label(label).array, dtype=np.float64)
    present = np.isfinite(values)
    hkl, values = hkl[present], values[present]
    both = np.concatenate([hkl, -hkl])
    values = np.concatenate([values, values])
    # a reflection given explicitly wins over a generated Friedel mate (np.unique keeps the first);
    # one integer key per index sorts several times faster than np.unique(axis=0)
    reach = np.abs(hkl).max(axis=0) if len(hkl) else np.zeros(3, dtype=np.int64)
    keys = np.ravel_multi_index((both + reach).T, tuple(2 * reach + 1))
    _, first = np.unique(keys, return_index=True)
    return both[first], values[first]


def _amplitude_column(mtz, path, column) -> tuple[str, bool, list[str]]:
    """(label, is_intensity, warnings) of the column to read from an MTZ."""
    where = os.fspath(path)
    if column is not None:
        col = mtz.column_with_label(column)
        if col is None:
            labels = " ".join(mtz.column_labels())
            raise InputError(f"--mtz-column: no column '{column}' in {where} (columns: {labels})")
        if col.type not in "FGJK":
            raise InputError(f"--mtz-column: column '{column}' of {where} has MTZ type {col.type}, "
                             f"not an amplitude (F, G) or intensity (J, K)")
        return column, col.type in "JK", []
    for kinds, is_intensity in (("FG", False), ("JK", True)):
        for col in mtz.columns:
            if col.type in kinds:
                warnings = ([f"WARNING: {where} has no amplitude column: using sqrt of intensities "
                             f"'{col.label}' (negative ones as 0)"] if is_intensity else [])
                return col.label, is_intensity, warnings
    raise InputError(f"-hkl: {where} has no amplitude or intensity column "
                     f"(columns: {' '.join(mtz.column_labels())})")


def _from_mtz(mtz, path, column, default_F) -> FileStructureFactors:
    label, is_intensity, warnings = _amplitude_column(mtz, path, column)
    cell, spacegroup = _cell_tuple(mtz.cell), mtz.spacegroup.hm if mtz.spacegroup else "P 1"
    if column is not None and is_intensity:
        warnings.append(f"WARNING: '{label}' holds intensities: using their sqrt (negative ones as 0)")
    hkl, values = _p1_with_friedel(mtz, label)
    if is_intensity:
        values = np.sqrt(np.maximum(values, 0.0))
    source = ("sqrt(%s)" if is_intensity else "%s") % label
    return FileStructureFactors(grid_from_reflections(hkl, values, default_F), cell, spacegroup, source, warnings)


def read_mtz(path, column: str | None = None, default_F: float = 0.0) -> FileStructureFactors:
    """Amplitudes of an MTZ file in P1: ``column`` (label), else the first F column, else sqrt(first I)."""
    gemmi = _gemmi()
    try:
        mtz = gemmi.read_mtz_file(os.fspath(path))
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"-hkl: cannot read MTZ file {os.fspath(path)} ({_one_line(exc)})") from None
    return _from_mtz(mtz, path, column, default_F)


def read_sf_mmcif(path, column: str | None = None, default_F: float = 0.0) -> FileStructureFactors:
    """Amplitudes of the first reflection block of an mmCIF structure-factor file, in P1.

    gemmi converts the block to MTZ with its standard mmCIF-to-MTZ column mapping
    (``F_meas_au`` -> FP, ``intensity_meas`` -> I, ...); ``column`` names an MTZ label.
    """
    gemmi = _gemmi()
    where = os.fspath(path)
    try:
        blocks = gemmi.as_refln_blocks(gemmi.cif.read(where))
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"-hkl: cannot read mmCIF file {where} ({_one_line(exc)})") from None
    if not blocks:
        raise InputError(f"-hkl: {where} has no reflection (_refln) block")
    try:
        mtz = gemmi.CifToMtz().convert_block_to_mtz(blocks[0])
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"-hkl: cannot use reflections of {where} ({_one_line(exc)})") from None
    return _from_mtz(mtz, path, column, default_F)


def fcalc_from_model(path, d_min: float, default_F: float = 0.0) -> FileStructureFactors:
    """|F_calc| (X-ray, electrons) of a coordinate model to ``d_min`` Angstrom, in P1.

    gemmi places the model's atoms (with its space-group images) on a grid, Fourier
    transforms it and removes the blur it added, as ``gemmi sfcalc`` does; the
    asymmetric unit is then expanded to P1 like a reflection file.
    """
    gemmi = _gemmi()
    where = os.fspath(path)
    try:
        structure = gemmi.read_structure(where)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"-hkl: cannot read coordinate model {where} ({_one_line(exc)})") from None
    if len(structure) == 0 or not any(True for _ in structure[0].all()):
        raise InputError(f"-hkl: {where} holds no atoms")
    if not structure.cell.is_crystal() or structure.cell.volume < 1.0:
        raise InputError(f"-hkl: {where} has no unit cell (CRYST1 or _cell): cannot compute F_calc")
    if not d_min > 0.0:
        raise InputError(f"-hkl: resolution limit {d_min} A is not positive for F_calc of {where}")
    structure.setup_entities()
    asu = _fft_structure_factors(gemmi, structure, d_min)
    if len(asu) == 0:
        raise InputError(f"-hkl: no reflection of {where} is within {d_min:.3g} A (the requested resolution)")
    mtz = _mtz_from_asu(gemmi, structure, asu)
    result = _from_mtz(mtz, path, "FC", default_F)
    result.source = "F_calc to %.3g A" % d_min
    return result


def _fft_structure_factors(gemmi, structure, d_min: float):
    calculator = gemmi.DensityCalculatorX()
    calculator.d_min = d_min
    calculator.rate = 1.5
    calculator.set_refmac_compatible_blur(structure[0])
    calculator.grid.setup_from(structure)
    calculator.put_model_density_on_grid(structure[0])
    coefficients = gemmi.transform_map_to_f_phi(calculator.grid)
    return coefficients.prepare_asu_data(dmin=d_min, unblur=calculator.blur)


def _mtz_from_asu(gemmi, structure, asu):
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = structure.find_spacegroup() or gemmi.SpaceGroup("P 1")
    mtz.set_cell_for_all(structure.cell)
    mtz.add_dataset("model")
    mtz.add_column("FC", "F")
    rows = np.column_stack([asu.miller_array, np.abs(asu.value_array)]).astype(np.float32)
    mtz.set_data(rows)
    return mtz


def read_structure_factors(path, *, d_min: float = math.nan, column: str | None = None,
                           default_F: float = 0.0) -> FileStructureFactors:
    """Read any gemmi-readable ``-hkl`` file (see :func:`file_format`); ``d_min`` is needed for models."""
    kind = file_format(path)
    if kind == MTZ:
        return read_mtz(path, column, default_F)
    if kind == SF_MMCIF:
        return read_sf_mmcif(path, column, default_F)
    if kind == MODEL:
        if column is not None:
            raise InputError("--mtz-column: not used with a coordinate model")
        return fcalc_from_model(path, d_min, default_F)
    raise InputError(f"-hkl: {os.fspath(path)} is a text list: read it with arraybragg.io.hkl.read_hkl_text")
