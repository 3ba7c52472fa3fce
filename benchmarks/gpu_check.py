"""One command for a GPU machine: the corpus on CuPy (pass/fail per case and dtype) and two timings.

    python benchmarks/gpu_check.py [--backend cupy] [--json gpu_check.json] [--cases ID,ID]
        [--skip-slow] [--c-bin nanoBraggCUDA] [--reference DIR]

For every corpus case (default mode; also --c-parity where the C differs) the float image is
rendered in float64 (tolerance 1e-6, floor 1e-9 x max) and float32 (1e-4, floor 1e-3 x max) and
compared with the reference.  Then sup_full and a 1024 x 1024 N=5 still are timed (best of three
renders after a warm-up render, so that kernel compilation falls outside), and, with --c-bin, the
whole nanoBraggCUDA process on the same arguments.  Everything goes into one JSON report.

``--backend numpy`` runs the same checks on the CPU (a dry run of the script itself).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TOLERANCES = {"float64": (1e-6, 1e-9), "float32": (1e-4, 1e-3)}
STILL = "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1 -distance 100 -pixel 0.1 -detpixels %d"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Corpus parity and timings of arraybragg on a GPU backend.")
    parser.add_argument("--backend", default="cupy", help="array backend (default cupy; numpy for a dry run)")
    parser.add_argument("--json", type=Path, default=Path("gpu_check.json"), help="report file")
    parser.add_argument("--cases", default="", help="comma-separated case ids (default: every case)")
    parser.add_argument("--skip-slow", action="store_true", help="leave out the large-detector cases")
    parser.add_argument("--c-bin", type=Path, help="nanoBraggCUDA (or nanoBragg) binary to time as well")
    parser.add_argument("--still-pixels", type=int, default=1024, help="side of the timed still (default 1024)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="reference corpus (default: $ARRAYBRAGG_REFERENCE, else ../shared/reference)")
    args = parser.parse_args(argv)
    args.reference = args.reference or Path(os.environ.get("ARRAYBRAGG_REFERENCE",
                                                           REPO.parent / "shared" / "reference"))
    if not (args.reference / "cases").is_dir():
        parser.error(f"--reference: no corpus at {args.reference}")
    return args


def _in_scratch(reference: Path, work):
    """Run work() in a temporary directory holding links to the corpus inputs."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as scratch:
        for item in (reference / "inputs").iterdir():
            os.symlink(item, os.path.join(scratch, item.name))
        os.chdir(scratch)
        try:
            return work()
        finally:
            os.chdir(cwd)


def _mismatch(image: np.ndarray, reference: np.ndarray, dtype: str) -> tuple[int, float]:
    rel, floor = TOLERANCES[dtype]
    ref = reference.astype(np.float64)
    diff = np.abs(image.astype(np.float64) - ref)
    tol = np.maximum(rel * np.abs(ref), floor * np.abs(ref).max())
    return int(np.count_nonzero(diff > tol)), float((diff / np.where(tol > 0, tol, 1.0)).max())


def check_case(case_dir: Path, backend: str, reference: Path) -> list[dict]:
    """Every (mode, dtype) render of one case against its reference image."""
    from arraybragg import build_simulation, parse_args as parse_flags
    from arraybragg.render.renderer import render

    meta = json.loads((case_dir / "case.json").read_text())
    shape = (meta["slow_pixels"], meta["fast_pixels"])
    modes = [("default", [], "float.bin.gz")]
    if meta.get("c_parity_differs"):
        modes.append(("c-parity", ["--c-parity"], "float_c_parity.bin.gz"))
    rows = []
    for mode, extra, image_name in modes:
        expected = np.frombuffer(gzip.decompress((case_dir / image_name).read_bytes()), "<f4").reshape(shape)
        for dtype in TOLERANCES:
            sim = _in_scratch(reference, lambda: build_simulation(parse_flags(shlex.split(meta["args"]) + extra)))
            start = time.perf_counter()
            result = render(sim, backend=backend, dtype=dtype)
            bad, worst = _mismatch(result.image, expected, dtype)
            rows.append(dict(case=case_dir.name, mode=mode, dtype=dtype, passed=bad == 0, pixels_over=bad,
                             worst_fraction_of_tolerance=worst, seconds=time.perf_counter() - start))
    return rows


def time_render(argv: list[str], backend: str, dtype: str, reference: Path) -> dict:
    """Best of three renders after a warm-up (kernel compilation outside the timing)."""
    from arraybragg import Renderer, build_simulation, parse_args as parse_flags

    sim = _in_scratch(reference, lambda: build_simulation(parse_flags(argv)))
    Renderer(sim, backend, dtype).render()
    times = []
    for _ in range(3):
        renderer = Renderer(sim, backend, dtype)
        start = time.perf_counter()
        renderer.render()
        times.append(time.perf_counter() - start)
    return dict(dtype=dtype, best_seconds=min(times), seconds=times,
                pixels_per_second=sim.detector.fpixels * sim.detector.spixels / min(times))


def time_binary(c_bin: Path, argv: list[str], reference: Path) -> dict:
    def run():
        start = time.perf_counter()
        done = subprocess.run([str(c_bin)] + argv + ["-floatfile", "c.bin", "-nonoise", "-nopgm"],
                              capture_output=True, text=True)
        return dict(seconds=time.perf_counter() - start, returncode=done.returncode)
    runs = [_in_scratch(reference, run) for _ in range(3)]
    return dict(binary=str(c_bin), best_seconds=min(r["seconds"] for r in runs), runs=runs)


def run(args: argparse.Namespace, report=print) -> dict:
    cases = sorted(d for d in (args.reference / "cases").iterdir() if (d / "case.json").exists())
    wanted = {name for name in args.cases.split(",") if name}
    rows = []
    for case_dir in cases:
        meta = json.loads((case_dir / "case.json").read_text())
        if (wanted and case_dir.name not in wanted) or (args.skip_slow and meta.get("slow")):
            continue
        for row in check_case(case_dir, args.backend, args.reference):
            rows.append(row)
            report("%-26s %-8s %-7s %s (worst %.3g of tolerance)" % (
                row["case"], row["mode"], row["dtype"], "pass" if row["passed"] else "FAIL",
                row["worst_fraction_of_tolerance"]))
    timings = {}
    sup_full = args.reference / "cases" / "sup_full" / "case.json"
    workloads = {"still_%d" % args.still_pixels: shlex.split(STILL % args.still_pixels)}
    if sup_full.exists() and not args.skip_slow:
        workloads["sup_full"] = shlex.split(json.loads(sup_full.read_text())["args"])
    for name, argv in workloads.items():
        timings[name] = [time_render(argv, args.backend, dtype, args.reference) for dtype in TOLERANCES]
        if args.c_bin:
            timings[name].append(time_binary(args.c_bin, argv, args.reference))
        report("%s: %s" % (name, ", ".join("%s %.3f s" % (t.get("dtype", "binary"), t["best_seconds"])
                                          for t in timings[name])))
    return dict(backend=args.backend, cases=rows, passed=sum(r["passed"] for r in rows), total=len(rows),
                timings=timings)


def main(argv=None) -> int:
    args = parse_args(argv)
    result = run(args)
    args.json.write_text(json.dumps(result, indent=2))
    print("%d of %d renders within tolerance; report in %s" % (result["passed"], result["total"], args.json))
    return 0 if result["passed"] == result["total"] else 1


if __name__ == "__main__":
    sys.exit(main())
