"""Time one reference-corpus case or named workload: a nanoBragg binary against arraybragg, alternating.

    python benchmarks/compare_c.py --c-bin PATH [--case sup_full | --workload NAME] [--repeats 5]
        [--dtypes float64,float32] [--threads N] [--reference DIR] [--default-mode]

Each round runs the C program, then arraybragg once per dtype policy, as whole
processes with the case's arguments and output flags, each in its own scratch
directory holding links to the corpus inputs.  Alternating keeps slow drift of
a noisy machine out of the ratios.  Reported: medians over the rounds, the peak
RSS of each child (os.wait4 in a small launcher: per child, not cumulative) and
the error of each arraybragg float image against the C image of the same round.

arraybragg runs with --c-parity unless --default-mode: the C binary keeps the
defects that the default mode removes, and the images are compared here.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arraybragg.backend import default_threads
from arraybragg.process import installed_python_env

REPO = Path(__file__).resolve().parent.parent
DTYPES = ("float64", "float32")
# (relative tolerance, absolute floor as a fraction of the C image's maximum) per dtype policy
TOLERANCES = {"float64": (1e-6, 1e-9), "float32": (1e-4, 1e-3)}
RELATIVE_FLOOR = 1e-9       # pixels below this fraction of the maximum have no meaningful relative error
RENDER_LINE = re.compile(r"render took ([0-9.eE+-]+) s")
WORKLOAD_OUTPUTS = "-floatfile float.bin -intfile int.img -nonoise -nopgm"
_TRICLINIC = "-cell 70 80 90 75 85 95 -default_F 100 -lambda 1 -distance 100 -misset 10 20 30"
# Workloads beyond the corpus (nanoBragg arguments; corpus inputs such as A.mat resolve as for cases)
WORKLOADS = {
    "tricubic": "-mat A.mat -hkl scaled.hkl -interpolate -N 5 -lambda 0.9768 -distance 150 -pixel 0.172 "
                "-detpixels 1024 -phi 0.05 -osc 0.6 -phisteps 6 -oversample 2",
    "mosaic": _TRICLINIC + " -N 10 -pixel 0.05 -detpixels 2048 -mosaic 0.5 -mosaic_dom 20 -oversample 1",
    "sources": _TRICLINIC + " -N 10 -pixel 0.05 -detpixels 2048 -hdivrange 0.3 -vdivrange 0.3 -hdivsteps 3 "
                            "-vdivsteps 3 -dispersion 2 -dispsteps 3 -oversample 1",
    "layers": _TRICLINIC + " -N 10 -pixel 0.05 -detpixels 2048 -detector_abs 300 -detector_thick 200 "
                           "-thicksteps 3 -twotheta 10 -oversample 2",
    "still": "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1 -distance 100 -pixel 0.05 "
             "-detpixels 3072 -oversample 2",
}


@dataclass
class Run:
    """One child process: wall time (s), its peak resident set (KiB), exit status and stdout."""

    seconds: float
    peak_rss_kib: int
    returncode: int
    stdout: str


@dataclass
class Series:
    """Every round of one command."""

    label: str
    dtype: str | None                       # None for the C program
    runs: list[Run] = field(default_factory=list)
    max_rel_error: float = 0.0
    pixels_over: int = 0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time a corpus case: nanoBragg against arraybragg, alternating.")
    parser.add_argument("--c-bin", required=True, type=Path, help="nanoBragg executable")
    parser.add_argument("--case", default="sup_full", help="corpus case id (default sup_full)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS),
                        help="a named workload instead of a corpus case (see WORKLOADS; default mode advised)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; medians are over these (default 5)")
    parser.add_argument("--dtypes", default=",".join(DTYPES), type=_dtype_list,
                        help="arraybragg dtype policies, comma separated (default float64,float32)")
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="OMP_NUM_THREADS for the C, --threads for arraybragg (default: all cores)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="reference corpus (default: $ARRAYBRAGG_REFERENCE, else ../shared/reference)")
    parser.add_argument("--default-mode", action="store_true",
                        help="run arraybragg without --c-parity (its images then differ where the C has defects)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: must be at least 1")
    if args.threads < 1:
        parser.error("--threads: must be at least 1")
    if not os.access(args.c_bin, os.X_OK):
        parser.error(f"--c-bin: {args.c_bin} is not an executable file")
    args.reference = resolve_reference(args.reference)
    if args.workload is None and not (args.reference / "cases" / args.case / "case.json").exists():
        parser.error(f"--case: no {args.case}/case.json under {args.reference / 'cases'}")
    return args


def _dtype_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DTYPES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(DTYPES)}, got {text!r}")
    return names


def resolve_reference(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    return Path(os.environ.get("ARRAYBRAGG_REFERENCE", REPO.parent / "shared" / "reference"))


def case_command_line(reference: Path, case: str, workload: str | None = None) -> tuple[list[str], list[str], str]:
    """(arguments, output flags, float image file name) of a named workload or from a case's case.json."""
    if workload is not None:
        return shlex.split(WORKLOADS[workload]), shlex.split(WORKLOAD_OUTPUTS), "float.bin"
    meta = json.loads((reference / "cases" / case / "case.json").read_text())
    output_flags = shlex.split(meta["output_flags"])
    if "-floatfile" not in output_flags[:-1]:
        raise SystemExit(f"compare_c: case {case}: output_flags name no -floatfile to compare")
    return shlex.split(meta["args"]), output_flags, output_flags[output_flags.index("-floatfile") + 1]


def scratch_dir(root: Path, name: str, inputs: Path) -> Path:
    """A directory of links to the corpus inputs, so relative file names in the arguments resolve."""
    directory = root / name
    directory.mkdir()
    if inputs.is_dir():
        for item in inputs.iterdir():
            (directory / item.name).symlink_to(item)
    return directory


# Runs as a small Python child that forks the command and waits for it.  The
# command's peak RSS must not start from this process's: a child that Popen
# vforks (or forks) from here inherits our high-water mark (or our resident
# pages) at exec, so a launcher with a ~7 MiB footprint does the fork instead.
_LAUNCHER = """
import json, os, sys, time
result_path, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(result_path, "w") as f:
    json.dump({"seconds": seconds, "ru_maxrss": usage.ru_maxrss, "returncode": os.waitstatus_to_exitcode(status)}, f)
"""


def timed_run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run argv to completion in cwd: wall time of the whole process and its own peak RSS.

    os.wait4 gives the rusage of that one child (ru_maxrss: the largest process
    of its tree, KiB on Linux), unlike deltas of RUSAGE_CHILDREN.  The launcher's
    own footprint (~7 MiB) is a floor under the reported peak.
    """
    with tempfile.TemporaryDirectory(prefix="timed_run-") as scratch:
        result_path = Path(scratch) / "result.json"
        output_path = Path(scratch) / "output.txt"
        with open(output_path, "wb") as out:
            subprocess.run([sys.executable, "-c", _LAUNCHER, str(result_path)] + list(argv), cwd=cwd, env=env,
                           stdout=out, stderr=subprocess.STDOUT, check=True)
        result = json.loads(result_path.read_text())
        text = output_path.read_text(errors="replace")
    peak = result["ru_maxrss"] // 1024 if sys.platform == "darwin" else result["ru_maxrss"]
    return Run(seconds=result["seconds"], peak_rss_kib=peak, returncode=result["returncode"], stdout=text)


def image_errors(image: np.ndarray, reference: np.ndarray, dtype: str) -> tuple[float, int]:
    """(largest relative error over pixels above 1e-9 x max, pixels outside the dtype's tolerance)."""
    ref = reference.astype(np.float64)
    diff = np.abs(image.astype(np.float64) - ref)
    magnitude = np.abs(ref)
    peak = float(magnitude.max()) if magnitude.size else 0.0
    meaningful = magnitude > RELATIVE_FLOOR * peak
    max_rel = float((diff[meaningful] / magnitude[meaningful]).max()) if meaningful.any() else 0.0
    rel, floor = TOLERANCES[dtype]
    over = int(np.count_nonzero(diff > np.maximum(rel * magnitude, floor * peak)))
    return max_rel, over


def summarize(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def render_seconds(run: Run) -> float | None:
    """The in-process render time arraybragg prints, if it printed one."""
    match = RENDER_LINE.search(run.stdout)
    return float(match.group(1)) if match else None


def format_table(series: list[Series]) -> str:
    c_median = summarize([run.seconds for run in series[0].runs])[0]
    header = ("run", "median s", "min s", "max s", "C/py", "render s", "peak RSS MiB", "max rel err",
              "tolerance", "pixels over")
    rows = [header]
    for item in series:
        median, low, high = summarize([run.seconds for run in item.runs])
        peak_mib = max(run.peak_rss_kib for run in item.runs) / 1024
        rendered = [s for s in (render_seconds(run) for run in item.runs) if s is not None]
        if item.dtype is None:
            extra = ("-", "-", "-", "-", "-")
        else:
            rel, floor = TOLERANCES[item.dtype]
            extra = ("%.2f" % (c_median / median), "%.3f" % statistics.median(rendered) if rendered else "-",
                     "%.3g" % item.max_rel_error, "%g, floor %g x max" % (rel, floor), str(item.pixels_over))
        rows.append((item.label, "%.3f" % median, "%.3f" % low, "%.3f" % high, extra[0], extra[1],
                     "%.1f" % peak_mib, extra[2], extra[3], extra[4]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) if i in (0, 8) else cell.rjust(width)
                       for i, (cell, width) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def run_comparison(args: argparse.Namespace, report=print) -> list[Series]:
    case_args, output_flags, float_name = case_command_line(args.reference, args.case, args.workload)
    mode = [] if args.default_mode else ["--c-parity"]
    c_env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    commands = [(Series("nanoBragg (C)", None), [str(args.c_bin.resolve())] + case_args + output_flags, c_env)]
    for dtype in args.dtypes:
        argv = ([sys.executable, "-m", "arraybragg"] + case_args + output_flags
                + ["--dtype", dtype, "--threads", str(args.threads)] + mode)
        commands.append((Series(f"arraybragg {dtype}", dtype), argv, installed_python_env()))
    with tempfile.TemporaryDirectory(prefix="compare_c-") as root:
        dirs = [scratch_dir(Path(root), "run%d" % i, args.reference / "inputs") for i in range(len(commands))]
        for round_number in range(1, args.repeats + 1):
            c_image = None
            for (item, argv, env), cwd in zip(commands, dirs):
                run = timed_run(argv, cwd, env)
                if run.returncode != 0:
                    raise SystemExit(f"compare_c: {item.label} exited with {run.returncode}:\n{run.stdout[-2000:]}")
                item.runs.append(run)
                image = np.fromfile(cwd / float_name, dtype="<f4")
                (cwd / float_name).unlink()
                if item.dtype is None:
                    c_image = image
                elif image.shape != c_image.shape:
                    raise SystemExit(f"compare_c: {item.label} wrote {image.size} pixels, the C {c_image.size}")
                else:
                    max_rel, over = image_errors(image, c_image, item.dtype)
                    item.max_rel_error = max(item.max_rel_error, max_rel)
                    item.pixels_over = max(item.pixels_over, over)
                report("round %d/%d  %-18s %8.3f s  %8.1f MiB"
                       % (round_number, args.repeats, item.label, run.seconds, run.peak_rss_kib / 1024))
    return [item for item, _, _ in commands]


def main(argv=None) -> int:
    args = parse_args(argv)
    print("%s, %d rounds, %d threads, C binary %s, arraybragg %s"
          % ("workload " + args.workload if args.workload else "case " + args.case, args.repeats, args.threads, args.c_bin, "default mode" if args.default_mode else "--c-parity"))
    series = run_comparison(args)
    print()
    print(format_table(series))
    print("\nC/py > 1: arraybragg is faster.  render s: arraybragg's own in-process render time.  "
          "max rel err: over pixels above %g x max; pixels over: worst round." % RELATIVE_FLOOR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
