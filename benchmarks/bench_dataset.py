"""Dataset throughput: frames per second of a still dataset on Dask (1 and 2 workers) against a shell loop
over the ``arraybragg`` command line doing the same work one process per image.

Run from the repository root (it takes minutes)::

    python benchmarks/bench_dataset.py --frames 100 --pixels 1024 --workers 1 2 --cli-frames 20

Each configuration is timed twice: ``noise`` (float image plus a Poisson image per frame; the CLI writes
-floatfile, -intfile and -noisefile) and ``float`` (float image only; the CLI with -nonoise).  The shell
loop may run fewer frames than the dataset (``--cli-frames``): its rate per frame does not depend on the
count.  Results are printed as a Markdown table and written as JSON with ``--json``.  This is a script,
not an asv benchmark (asv imports it and finds nothing to time).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

BASE = "-cell 79 79 38 90 90 90 -default_F 100 -N 10 -lambda 1 -distance 100 -pixel 0.1"
JITTER = {"cell": 0.005, "crystal_size": 0.2, "wavelength": 0.001, "fluence": 0.3, "distance": 0.5}


def dataset_rate(frames: int, pixels: int, workers: int, noise: bool, scratch: str) -> dict:
    """Frames per second of run_dataset on a fresh LocalCluster of ``workers`` processes."""
    from arraybragg.dataset import run_dataset, spec_from_dict
    spec = spec_from_dict({"dataset": {"frames": frames, "seed": 1, "base": BASE + " -detpixels %d" % pixels},
                           "orientation": {"mode": "stills"}, "jitter": JITTER, "noise": {"poisson": noise}})
    out = tempfile.mkdtemp(dir=scratch)
    start = time.perf_counter()
    report = run_dataset(spec, out, workers=workers, progress=False)
    wall = time.perf_counter() - start
    shutil.rmtree(out)
    return dict(frames=frames, seconds=report.seconds, wall=wall, rate=frames / report.seconds,
                rate_with_startup=frames / wall)


def cli_rate(frames: int, pixels: int, noise: bool, scratch: str) -> dict:
    """Frames per second of a bash loop running ``arraybragg`` once per frame (random misset per frame)."""
    exe = shlex.quote(os.path.join(os.path.dirname(sys.executable), "arraybragg"))
    outputs = "-nopgm" + ("" if noise else " -nonoise")
    loop = ("for i in $(seq 1 %d); do %s %s -detpixels %d -misset random -misset_seed $i -seed $i %s "
            "-floatfile f$i.bin -intfile i$i.img -noisefile n$i.img > /dev/null || exit 1; done"
            % (frames, exe, BASE, pixels, outputs))
    directory = tempfile.mkdtemp(dir=scratch)
    start = time.perf_counter()
    subprocess.run(["bash", "-c", loop], cwd=directory, check=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(directory)
    return dict(frames=frames, seconds=seconds, wall=seconds, rate=frames / seconds, rate_with_startup=frames / seconds)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--pixels", type=int, default=1024)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--cli-frames", type=int, default=20)
    p.add_argument("--modes", nargs="+", default=["noise", "float"], choices=["noise", "float"])
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as scratch:
        for mode in args.modes:
            noise = mode == "noise"
            for workers in args.workers:
                rows.append(dict(mode=mode, engine="dask, %d worker%s" % (workers, "s" * (workers > 1)),
                                 **dataset_rate(args.frames, args.pixels, workers, noise, scratch)))
                print(rows[-1], file=sys.stderr, flush=True)
            if args.cli_frames:
                rows.append(dict(mode=mode, engine="shell loop over the CLI",
                                 **cli_rate(args.cli_frames, args.pixels, noise, scratch)))
                print(rows[-1], file=sys.stderr, flush=True)
    print("| images | engine | frames | render s | frames/s | frames/s incl. cluster start |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| %s | %s | %d | %.1f | %.2f | %.2f |" % (r["mode"], r["engine"], r["frames"], r["seconds"], r["rate"],
                                                        r["rate_with_startup"]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(pixels=args.pixels, rows=rows), fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
