"""-hkl MTZ / mmCIF / PDB through gemmi (arraybragg.io.reflections), checked against gemmi and text lists."""
import gzip
import io
import os

import numpy as np
import pytest

gemmi = pytest.importorskip("gemmi")

from arraybragg import cli
from arraybragg.io import flags
from arraybragg.io import hkl
from arraybragg.io import reflections
from arraybragg.render.renderer import render
from arraybragg.errors import InputError
from arraybragg.models.nanobragg import build_simulation

CELL = (30.0, 40.0, 50.0, 90.0, 90.0, 90.0)
# a full P1 list (Friedel mates included) with integer amplitudes: exact in the MTZ's float32
P1_LIST = np.array([(h, k, l, 5 + (h * 7 + k * 3 + l * 11) % 17)
                    for h in range(-5, 6) for k in range(-5, 6) for l in range(-6, 7)], dtype=float)
MODEL = """\
CRYST1   20.000   25.000   30.000  90.00  90.00  90.00 P 21 21 21    4
ATOM      1  N   GLY A   1       2.000   3.000   4.000  1.00 15.00           N
ATOM      2  CA  GLY A   1       3.400   3.200   4.300  1.00 16.00           C
ATOM      3  C   GLY A   1       4.100   4.500   4.000  1.00 17.00           C
ATOM      4  O   GLY A   1       3.500   5.500   3.600  1.00 18.00           O
ATOM      5  SG  CYS A   2       6.000   7.000   9.000  0.80 20.00           S
END
"""
SF_CIF = """\
data_r9xyzsf
_cell.length_a 30
_cell.length_b 40
_cell.length_c 50
_cell.angle_alpha 90
_cell.angle_beta 90
_cell.angle_gamma 90
_symmetry.space_group_name_H-M 'P 1 21 1'
loop_
_refln.index_h
_refln.index_k
_refln.index_l
_refln.status
_refln.F_meas_au
_refln.F_meas_sigma_au
1 2 3 o 12.5 1.0
0 1 0 o 7.25 0.5
2 0 1 o 3.0 0.5
"""


def write_mtz(path, rows, columns=(("FP", "F"),), spacegroup="P 1", cell=CELL):
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = gemmi.SpaceGroup(spacegroup)
    mtz.set_cell_for_all(gemmi.UnitCell(*cell))
    mtz.add_dataset("test")
    for label, kind in columns:
        mtz.add_column(label, kind)
    mtz.set_data(np.asarray(rows, dtype=np.float32))
    mtz.write_to_file(str(path))


def F_at(grid, h, k, l):
    return grid.F[h - grid.h_min, k - grid.k_min, l - grid.l_min]


def test_file_format_by_content(tmp_path):
    files = {"list.hkl": "1 2 3 10\n", "model.pdb": MODEL, "data.cif": SF_CIF, "any.txt": MODEL}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    write_mtz(tmp_path / "data.dat", P1_LIST[:3])
    st = gemmi.read_structure(str(tmp_path / "model.pdb"))
    st.setup_entities()
    st.make_mmcif_document().write_file(str(tmp_path / "model.cif"))
    (tmp_path / "r9xyzsf.ent.gz").write_bytes(gzip.compress(SF_CIF.encode()))
    names = [*files, "data.dat", "model.cif", "r9xyzsf.ent.gz"]
    kinds = {name: reflections.file_format(tmp_path / name) for name in names}
    assert kinds == {"list.hkl": "text", "model.pdb": "model", "data.cif": "sf-mmcif", "any.txt": "model",
                     "data.dat": "mtz", "model.cif": "model", "r9xyzsf.ent.gz": "sf-mmcif"}
    gz = reflections.read_structure_factors(tmp_path / "r9xyzsf.ent.gz")
    assert gz.grid.count == 8 and gz.spacegroup == "P 1 21 1"


def test_mtz_from_p1_list_gives_the_same_grid_and_image_as_the_list(tmp_path):
    np.savetxt(tmp_path / "P1.hkl", P1_LIST, fmt="%d %d %d %g")
    write_mtz(tmp_path / "P1.mtz", P1_LIST)
    images, grids = [], []
    for name in ("P1.hkl", "P1.mtz"):
        settings = flags.parse_args(["-hkl", str(tmp_path / name), "-cell", *map(str, CELL), "-N", "4",
                                     "-detpixels", "64", "-pixel", "0.4", "-distance", "60", "-lambda", "1.2",
                                     "-oversample", "1", "-misset", "10", "20", "30"])
        sim = build_simulation(settings, log=lambda line="": None, workdir=str(tmp_path))
        grids.append(sim.structure_factors.grid)
        images.append(render(sim).image)
    text_grid, mtz_grid = grids
    assert mtz_grid.count == text_grid.count == len(P1_LIST)
    assert (mtz_grid.h_min, mtz_grid.h_max, mtz_grid.l_min, mtz_grid.l_max) == (-5, 5, -6, 6)
    assert np.array_equal(mtz_grid.F, text_grid.F)
    assert images[0].max() > 10.0 and np.count_nonzero(images[0]) > 2000
    assert np.array_equal(images[0], images[1])  # 4096 of 4096 pixels identical


def test_mtz_in_p212121_is_expanded_to_p1_with_friedel_mates(tmp_path):
    write_mtz(tmp_path / "asu.mtz", [(1, 2, 3, 10.0), (0, 0, 2, 5.0), (4, 0, 1, 7.0)], spacegroup="P 21 21 21")
    result = reflections.read_mtz(tmp_path / "asu.mtz", default_F=1.5)
    grid = result.grid
    general = [(sh * 1, sk * 2, sl * 3) for sh in (1, -1) for sk in (1, -1) for sl in (1, -1)]
    expected = {**{i: 10.0 for i in general}, (0, 0, 2): 5.0, (0, 0, -2): 5.0,
                **{(sh * 4, 0, sl): 7.0 for sh in (1, -1) for sl in (1, -1)}}
    assert grid.count == len(expected) == 14
    for index, value in expected.items():
        assert F_at(grid, *index) == value, index
    assert F_at(grid, 1, 2, 2) == 1.5 and F_at(grid, 0, 0, 1) == 1.5  # absent: -default_F
    assert result.spacegroup == "P 21 21 21" and result.cell == CELL and result.source == "FP"


def test_mtz_columns_intensities_and_choice(tmp_path):
    rows = [(1, 0, 0, 16.0, 9.0), (0, 1, 0, -4.0, 2.0)]
    write_mtz(tmp_path / "i.mtz", rows, columns=(("IMEAN", "J"), ("F2", "F")))
    assert F_at(reflections.read_mtz(tmp_path / "i.mtz").grid, -1, 0, 0) == 9.0  # first F column: F2, Friedel mate
    write_mtz(tmp_path / "ionly.mtz", [r[:4] for r in rows], columns=(("IMEAN", "J"),))
    result = reflections.read_mtz(tmp_path / "ionly.mtz")
    assert (F_at(result.grid, 1, 0, 0), F_at(result.grid, 0, -1, 0)) == (4.0, 0.0)  # sqrt, negative I -> 0
    assert result.source == "sqrt(IMEAN)" and "sqrt of intensities 'IMEAN'" in result.warnings[0]
    chosen = reflections.read_mtz(tmp_path / "i.mtz", column="IMEAN")
    assert F_at(chosen.grid, 1, 0, 0) == 4.0 and chosen.warnings
    with pytest.raises(InputError, match="--mtz-column: no column 'FOBS'.*columns: H K L IMEAN F2"):
        reflections.read_mtz(tmp_path / "i.mtz", column="FOBS")
    with pytest.raises(InputError, match="type H, not an amplitude"):
        reflections.read_mtz(tmp_path / "i.mtz", column="K")


def test_sf_mmcif_is_read_and_expanded(tmp_path):
    (tmp_path / "r9xyzsf.ent").write_text(SF_CIF)
    result = reflections.read_structure_factors(tmp_path / "r9xyzsf.ent")
    grid = result.grid
    # P 1 21 1: (h k l) ~ (-h k -l); with Friedel mates (h -k l) and (-h -k -l)
    for h, k, l in [(1, 2, 3), (-1, 2, -3), (1, -2, 3), (-1, -2, -3)]:
        assert F_at(grid, h, k, l) == 12.5
    assert F_at(grid, 0, -1, 0) == 7.25 and F_at(grid, -2, 0, -1) == 3.0
    assert grid.count == 4 + 2 + 2
    assert result.cell == CELL and result.spacegroup == "P 1 21 1"


def test_fcalc_of_a_pdb_model_equals_gemmi_direct_summation(tmp_path):
    (tmp_path / "model.pdb").write_text(MODEL)
    d_min = 2.05
    grid = reflections.fcalc_from_model(tmp_path / "model.pdb", d_min).grid
    st = gemmi.read_structure(str(tmp_path / "model.pdb"))
    calculator = gemmi.StructureFactorCalculatorX(st.cell)
    # every P1 reflection to d_min (000 and systematic absences aside) must be on the grid
    h, k, l = np.meshgrid(*[np.arange(-n, n + 1) for n in (10, 13, 15)], indexing="ij")
    indices = np.stack([h.ravel(), k.ravel(), l.ravel()], axis=1)
    d = np.array([st.cell.calculate_d(list(map(int, i))) if i.any() else np.inf for i in indices])
    absent = gemmi.SpaceGroup("P 21 21 21").operations().systematic_absences(indices)
    wanted = indices[(d >= d_min) & np.isfinite(d) & ~absent]
    assert grid.count == len(wanted) > 5000
    ours = np.array([F_at(grid, *map(int, i)) for i in wanted])
    direct = np.array([abs(calculator.calculate_sf_from_model(st[0], list(map(int, i)))) for i in wanted])
    # FFT with gemmi's default sampling against gemmi's exact sum over atoms and symmetry mates
    assert np.max(np.abs(ours - direct)) < 1e-4 * direct.max()  # measured 2.2e-5
    assert np.corrcoef(ours, direct)[0, 1] > 0.99999


def _cli(tmp_path, *argv):
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = cli.run(["-N", "3", "-detpixels", "32", "-pixel", "1", "-distance", "50", "-nonoise", "-nopgm",
                        "-noprogress", *argv], out=out, err=err)
    finally:
        os.chdir(cwd)
    return code, out.getvalue()


def test_cli_cell_from_file_or_warning_when_they_differ(tmp_path):
    (tmp_path / "model.pdb").write_text(MODEL)
    code, log = _cli(tmp_path, "-hkl", "model.pdb")
    assert code == 0 and "Unit Cell: 20 25 30 90 90 90" in log and "unit cell from model.pdb" in log
    assert "P1 reflections (F_calc to" in log and "WARNING: the unit cell" not in log
    code, log = _cli(tmp_path, "-hkl", "model.pdb", "-cell", "20", "25", "31", "90", "90", "90")
    assert code == 0 and "Unit Cell: 20 25 31 90 90 90" in log
    assert "WARNING: the unit cell 20 25 31 90 90 90 differs from the cell of the -hkl file 20 25 30 90 90 90" in log


def test_cli_bad_column_is_one_line_and_leaves_no_file(tmp_path, capsys):
    write_mtz(tmp_path / "P1.mtz", P1_LIST[:10])
    np.savetxt(tmp_path / "P1.hkl", P1_LIST[:10], fmt="%d %d %d %g")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cli.main(["-hkl", "P1.mtz", "--mtz-column", "FOBS", "-detpixels", "16"]) == 2
        assert cli.main(["-hkl", "P1.hkl", "--mtz-column", "FP", "-cell", "30", "30", "30", "90", "90", "90"]) == 2
    finally:
        os.chdir(cwd)
    errors = capsys.readouterr().err.splitlines()
    assert errors == ["arraybragg: error: --mtz-column: no column 'FOBS' in P1.mtz (columns: H K L FP)",
                      "arraybragg: error: --mtz-column: -hkl P1.hkl is a text list, not an MTZ or mmCIF file"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P1.hkl", "P1.mtz"]


@pytest.mark.parametrize("name, content, message", [
    ("bad.mtz", b"MTZ garbage", "-hkl: cannot read MTZ file bad.mtz (Could not read the MTZ file"),
    ("nocell.pdb", MODEL.split("\n", 1)[1].encode(), "-hkl: nocell.pdb has no unit cell (CRYST1 or _cell)"),
    ("short.pdb", b"ATOM  \n", "-hkl: cannot read coordinate model short.pdb (Problem in line 1"),
    ("empty.cif", b"data_x\n_cell.length_a 10\n", "-hkl: empty.cif holds no atoms"),
])
def test_unreadable_files_give_one_line(tmp_path, capsys, name, content, message):
    (tmp_path / name).write_bytes(content)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cli.main(["-hkl", name, "-detpixels", "16", "-nonoise", "-nopgm"]) == 2
    finally:
        os.chdir(cwd)
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1 and errors[0].startswith("arraybragg: error: " + message)
    assert [p.name for p in tmp_path.iterdir()] == [name]
