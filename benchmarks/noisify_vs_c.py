"""Time arraybragg-noisify against a noisify binary (bl831/nanoBragg noisify.c) as whole processes.

    python benchmarks/noisify_vs_c.py --c-bin /tmp/noisify [--float FILE] [--repeats 5] [--args "..."]

The default case is the issue's speed case: sup_full's float image with
``-detpixels_x 2463 -detpixels_y 2527 -pixel 0.172 -distance 231.27 -scale 1e7
-psf gauss -psf_fwhm 300 -seed 3`` (the float image is decompressed from the
corpus into a scratch directory unless --float names one).  Each round runs the
C program, then arraybragg-noisify, each in its own scratch directory; the
rounds alternate so that drift of a shared machine falls on both.  One warm-up
run of arraybragg-noisify first fills the page cache and the bytecode caches (Python runs
without PYTHONDONTWRITEBYTECODE, as an installed package has its .pyc files), and numba's
on-disk cache, used only when the C extension ``arraybragg.response._noiseloop`` was not built.  Reported: the
median wall time of each program, their ratio and the median of the rounds' ratios, the
1-minute load average before and after the rounds (the machine may be shared), and whether
the three output files of the last round are byte-identical.  Build the C program yourself, e.g.
``gcc -O2 -o /tmp/noisify noisify.c -lm``; nothing here depends on it otherwise.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from arraybragg.process import installed_python_env

REPO = Path(__file__).resolve().parent.parent
SPEED_CASE = ("-detpixels_x 2463 -detpixels_y 2527 -pixel 0.172 -distance 231.27 -scale 1e7 "
              "-psf gauss -psf_fwhm 300 -seed 3")
OUTPUTS = ("-intfile int.img -noisefile noise.img -pgmfile image.pgm")


def reference_dir() -> Path:
    return Path(os.environ.get("ARRAYBRAGG_REFERENCE", REPO.parent / "shared" / "reference"))


def timed_run(command: list[str], workdir: Path, env=None) -> float:
    """Wall time of one whole process (its output discarded); raises when it fails."""
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def float_image(path: str | None, scratch: Path) -> Path:
    if path is not None:
        return Path(path).resolve()
    target = scratch / "in.bin"
    source = reference_dir() / "cases" / "sup_full" / "float.bin.gz"
    with gzip.open(source, "rb") as packed, open(target, "wb") as out:
        shutil.copyfileobj(packed, out)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--c-bin", required=True, help="noisify binary")
    parser.add_argument("--py-bin", default=None, help="arraybragg-noisify (default: this Python -m)")
    parser.add_argument("--float", default=None, help="float image (default: sup_full's from the corpus)")
    parser.add_argument("--args", default=SPEED_CASE, help="noisify arguments (default: the speed case)")
    parser.add_argument("--py-extra", default="", help="options for arraybragg-noisify only, e.g. '--psf-method fft'")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args(argv)
    python = shlex.split(options.py_bin) if options.py_bin else [sys.executable, "-m", "arraybragg.tools.noisify"]
    with tempfile.TemporaryDirectory(prefix="noisify-bench-") as scratch:
        scratch = Path(scratch)
        floats = float_image(options.float, scratch)
        args = ["-floatfile", str(floats)] + shlex.split(options.args) + shlex.split(OUTPUTS)
        sides = {"c": [os.path.abspath(options.c_bin)] + args,
                 "arraybragg": python + args + shlex.split(options.py_extra)}
        dirs = {name: scratch / name for name in sides}
        for directory in dirs.values():
            directory.mkdir()
        envs = {"c": None, "arraybragg": installed_python_env()}
        timed_run(sides["arraybragg"], dirs["arraybragg"], envs["arraybragg"])  # warm-up: page and bytecode caches
        load = [os.getloadavg()[0]]
        times = {name: [] for name in sides}
        for _ in range(options.repeats):
            for name, command in sides.items():
                times[name].append(timed_run(command, dirs[name], envs[name]))
        same = {name: (dirs["c"] / name).read_bytes() == (dirs["arraybragg"] / name).read_bytes()
                for name in ("int.img", "noise.img", "image.pgm")}
        load.append(os.getloadavg()[0])
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = [mine / theirs for mine, theirs in zip(times["arraybragg"], times["c"])]
    print(json.dumps({"args": options.args, "py_extra": options.py_extra, "repeats": options.repeats, "median_s": medians,
                      "times_s": times, "ratio": medians["arraybragg"] / medians["c"],
                      "median_round_ratio": statistics.median(ratios), "load_average_1min": load,
                      "identical_files": same}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
