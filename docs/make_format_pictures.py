"""Make the pictures of docs/formats.md: run ``python docs/make_format_pictures.py`` from the repository root.

Writes a tiny coordinate model, renders it through ``-hkl model.pdb`` (F_calc by gemmi)
and writes the same render as log- and sqrt-scaled PNG previews (256 x 256, < 100 KB each)
into docs/images/.  Also writes the CBF and NeXus files into a temporary directory and
prints what fabio and h5py read back, as a check that the page's examples work.
"""
from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from arraybragg import cli

MODEL = """\
CRYST1   30.000   36.000   42.000  90.00  90.00  90.00 P 21 21 21    4
ATOM      1  N   GLY A   1       2.000   3.000   4.000  1.00 15.00           N
ATOM      2  CA  GLY A   1       3.400   3.200   4.300  1.00 16.00           C
ATOM      3  C   GLY A   1       4.100   4.500   4.000  1.00 17.00           C
ATOM      4  O   GLY A   1       3.500   5.500   3.600  1.00 18.00           O
ATOM      5  SG  CYS A   2       6.000   7.000   9.000  1.00 20.00           S
ATOM      6 FE   HEM A   3      11.000  12.000  15.000  1.00 12.00          FE
END
"""
RENDER = ["-hkl", "model.pdb", "-N", "6", "-detpixels", "256", "-pixel", "0.4", "-distance", "80", "-lambda", "1",
          "-misset", "12", "25", "31", "-mosaic", "0.2", "-mosaic_domains", "5", "-oversample", "1", "-nopgm",
          "-seed", "1", "-noprogress"]


def main() -> int:
    images = Path(__file__).resolve().parent / "images"
    images.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        Path(work, "model.pdb").write_text(MODEL)
        cwd = os.getcwd()
        os.chdir(work)
        try:
            outputs = ["-cbffile", "model.cbf", "-nexusfile", "model.nxs", "--nexus-int",
                       "-pngfile", str(images / "formats_model_log.png")]
            assert cli.run(RENDER + outputs, out=io.StringIO()) == 0
            assert cli.run(RENDER + ["--png-scale", "sqrt", "--png-cmap", "gray_r",
                                     "-pngfile", str(images / "formats_model_sqrt.png")], out=io.StringIO()) == 0
            _report(Path(work))
        finally:
            os.chdir(cwd)
    for png in sorted(images.glob("formats_*.png")):
        print(f"{png.relative_to(images.parent.parent)}: {png.stat().st_size // 1024} KB")
    return 0


def _report(work: Path) -> None:
    import fabio
    import h5py
    import hdf5plugin  # noqa: F401  (the Bitshuffle filter)

    cbf, smv = fabio.open(str(work / "model.cbf")), fabio.open(str(work / "intimage.img"))
    print("CBF == SMV pixels:", np.array_equal(cbf.data, smv.data), "Beam_xy", cbf.pilatus_headers["Beam_xy"])
    with h5py.File(work / "model.nxs", "r") as h5:
        print("NXmx definition:", h5["entry/definition"][()].decode(), "data", h5["entry/data/data"].shape)


if __name__ == "__main__":
    sys.exit(main())
