"""``arraybragg-dataset``: render a dataset described in TOML, or export some of its frames.

    arraybragg-dataset SPEC.toml --out DIR [--scheduler ADDRESS] [--workers N] [--no-progress]
    arraybragg-dataset export DIR --frames START:STOP --to DEST [--formats float,smv,noise]
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..errors import InputError, report_failures
from .engine import run_dataset
from .export import FORMATS, export_frames, parse_frames
from .spec import load_spec
from .store import stored_spec


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, like every arraybragg error
        raise InputError(message)


def _run_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="arraybragg-dataset", description="Render a many-image dataset on Dask into a Zarr store "
                "(see docs/datasets.md); 'arraybragg-dataset export -h' for the export command.")
    p.add_argument("spec", help="dataset description (TOML)")
    p.add_argument("--out", required=True, help="output directory (a re-run there resumes)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _export_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="arraybragg-dataset export", description="Write frames as single-image files.")
    p.add_argument("out", help="dataset directory")
    p.add_argument("--frames", default=":", help="N or START:STOP (default: all)")
    p.add_argument("--to", required=True, dest="dest", help="directory for the files")
    p.add_argument("--formats", default="float,smv", help="comma list of %s (default float,smv)" % ",".join(FORMATS))
    return p


def run(argv: Sequence[str], out=None) -> int:
    out = out or sys.stdout
    log = lambda line: (out.write(line + "\n"), out.flush())
    if argv and argv[0] == "export":
        args = _export_parser().parse_args(argv[1:])
        frames = parse_frames(args.frames, stored_spec(args.out).frames)
        written = export_frames(args.out, frames, args.dest, [f for f in args.formats.split(",") if f])
        log("wrote %d files to %s" % (len(written), args.dest))
        return 0
    args = _run_parser().parse_args(argv)
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers: expected at least 1")
    report = run_dataset(load_spec(args.spec), args.out, scheduler=args.scheduler, workers=args.workers,
                         progress=not args.no_progress, log=log)
    log("rendered %d frames in %.1f s (%.2f frames/s); %d were finished already (verified)"
        % (len(report.rendered), report.seconds, report.frames_per_second, len(report.skipped)))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return report_failures("arraybragg-dataset", run, sys.argv[1:] if argv is None else argv,
                           interrupted="interrupted (finished frames are kept; re-run to resume)")


if __name__ == "__main__":
    sys.exit(main())
