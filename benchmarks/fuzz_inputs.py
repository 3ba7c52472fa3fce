"""Fuzz the command line as a hostile user would: random flag lines and damaged input files.

    python benchmarks/fuzz_inputs.py [--grammar 4000] [--files 4000] [--seed 1] [--timeout 30]
        [--max-work 1e6] [--show 5] [--json FILE]

Every case runs ``arraybragg.cli.main`` in a forked child (the parent imports arraybragg once),
in its own empty scratch directory, with stdout and stderr captured and a wall-clock timeout.
Counted per case kind:

- traceback: an exception escaped main() (or stderr holds "Traceback"), or an exit status
  other than 0, 1, 2 and 130;
- hang: the child ran past --timeout and was killed (slow_raised_limit instead when the case's
  own --max-work/--max-memory raised the limit: long runs are then what the user asked for);
- nan_image: exit 0 but the float image holds NaN or infinite pixels;
- not_one_line: a failed run whose stderr is not exactly one "arraybragg: error: ..." line;
- left_behind: a failed run that left files beside its inputs.

Grammar cases are random lines of nanoBragg flags (values of the right kind, edge values,
some garbage tokens) after a small base command; file cases damage a valid HKL, matrix,
source, SMV (-img / -mask) or Fdump file (truncation, byte flips, NUL, CRLF, non-UTF-8,
NaN/inf, huge numbers, a directory) and run the base command with it.  ARRAYBRAGG_MAX_WORK
in the children is --max-work, so accepted renders stay small.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback

import numpy as np

from arraybragg import cli
from arraybragg.io.flags import FLAG_TABLE

BASE = "-cell 100 100 100 90 90 90 -N 3 -detpixels 12 -nopgm".split()
OUTPUT_NAMES = ["out.bin", "a.img", "in.hkl", "sub/x.img", ".", "Fdump.bin", "b.pgm"]
FILE_FLAGS = {"-hkl", "-mat", "-img", "-mask", "-sourcefile", "-dump", "-stol", "-4stol", "-Q", "-stolout",
              "-floatfile", "-floatimage", "-intfile", "-intimage", "-noisefile", "-noiseimage", "-pgmfile",
              "-pgmimage"}
EDGE_NUMBERS = ["0", "-0", "1", "-1", "2", "90", "180", "360", "1e-300", "-1e-300", "1e300", "-1e300", "1e308",
                "nan", "inf", "-inf", "NaN", "Infinity", ".5", "1e3", "4.9e-324", "2147483648", "-2147483649",
                "99999999999999999999", "1e-7", "0.001", "1000", "45"]
GARBAGE = ["", " ", "x", "--", "-", "random", "beam", "sample", "numpy", "cupy", "float32", "--max-work",
           "\u00e9", "1,5", "0x10", "1e", "+", "-N", "-cell", "--threads=0", "--dtype=float16"]


def random_number(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(EDGE_NUMBERS)
    if roll < 0.8:
        return "%.4g" % rng.uniform(-200, 200)
    return repr(rng.uniform(-1, 1) * 10 ** rng.randint(-320, 308))


def flag_group(rng: random.Random) -> list[str]:
    spec = rng.choice(FLAG_TABLE)
    flag = rng.choice(spec.names)
    if flag in ("-h", "--help", "--version"):
        return []
    if spec.kind == "switch":
        return [flag]
    if flag in FILE_FLAGS:
        return [flag, rng.choice(OUTPUT_NAMES)]
    if spec.kind == "text":
        return [flag, rng.choice(["beam", "sample", "numpy", "cupy", "float32", "float64", "x"])]
    if spec.kind == "misset" and rng.random() < 0.3:
        return [flag, "random"]
    count = rng.randint(1, spec.nargs) if spec.kind == "cell" else spec.nargs
    if spec.kind == "integer":
        return [flag] + [rng.choice([str(rng.randint(-5, 40)), rng.choice(EDGE_NUMBERS)]) for _ in range(count)]
    return [flag] + [random_number(rng) for _ in range(count)]


def grammar_case(rng: random.Random) -> tuple[list[str], dict]:
    tokens = []
    for _ in range(rng.randint(0, 6)):
        tokens += [rng.choice(GARBAGE)] if rng.random() < 0.08 else flag_group(rng)
    if rng.random() < 0.7:
        tokens = ["-default_F", "100"] + tokens
    return BASE + tokens, {}


def _smv(**keys) -> bytes:
    fields = {"HEADER_BYTES": 512, "DIM": 2, "BYTE_ORDER": "little_endian", "TYPE": "unsigned_short",
              "SIZE1": 12, "SIZE2": 12, "PIXEL_SIZE": 0.1, "DISTANCE": 100, "WAVELENGTH": 1, "BEAM_CENTER_X": 0.6,
              "BEAM_CENTER_Y": 0.6, **keys}
    header = "{\n" + "".join(f"{k}={v};\n" for k, v in fields.items()) + "}\f"
    return header.encode().ljust(512, b" ") + np.ones((12, 12), dtype="<u2").tobytes()


def _fdump() -> bytes:
    return b"-1 1 -1 1 -1 1\n\f" + np.arange(64, dtype="<f8").tobytes()


VALID_FILES = {
    "-hkl": ("in.hkl", b"".join(b"%d %d %d %g\n" % (h, k, l, 10 + h + k + l)
                                for h in range(-2, 3) for k in range(-2, 3) for l in range(-2, 3))),
    "-mat": ("A.mat", b" 0.0100 0.0000 0.0000\n 0.0000 0.0100 0.0000\n 0.0000 0.0000 0.0100\n"),
    "-sourcefile": ("s.txt", b"-10 0 0 1 1e-10\n-10 0.01 0 0.5 1.01e-10\n"),
    "-img": ("h.img", _smv()),
    "-mask": ("m.smv", _smv()),
    "-dump": ("Fdump.bin", _fdump()),
}


def damage(rng: random.Random, data: bytes) -> bytes:
    """One to three random damages of a valid file."""
    for _ in range(rng.randint(1, 3)):
        roll = rng.randrange(9)
        at = rng.randrange(len(data) + 1) if data else 0
        if roll == 0:
            data = data[:at]                                          # truncated
        elif roll == 1 and data:
            flips = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                flips[rng.randrange(len(flips))] = rng.randrange(256)
            data = bytes(flips)                                       # flipped bytes
        elif roll == 2:
            data = data[:at] + rng.choice([b"\0", b"\xff\xfe", b"\x80", b"\r\n", b"\r", b"\t\v\f"]) + data[at:]
        elif roll == 3:
            data = data.replace(b"\n", b"\r\n")                       # CRLF
        elif roll == 4:
            word = rng.choice([b"nan", b"inf", b"-inf", b"1e999", b"-1e308", b"1e-320", b"0", b"-5", b"99999999"])
            data = data[:at] + b" " + word + b" " + data[at:]          # odd numbers
        elif roll == 5:
            key = rng.choice([b"SIZE1", b"SIZE2", b"PIXEL_SIZE", b"DISTANCE", b"WAVELENGTH", b"HEADER_BYTES",
                              b"BEAM_CENTER_Y", b"ORGX", b"PHI", b"OSC_RANGE", b"BYTE_ORDER"])
            value = rng.choice([b"nan", b"inf", b"0", b"-1", b"1e30", b"99999", b"big_endian", b""])
            data = data.replace(key + b"=", key + b"=" + value + b";X", 1)
        elif roll == 6:
            data = rng.randbytes(rng.randint(0, 600))                 # random bytes
        elif roll == 7:
            data = data + data[: rng.randint(0, len(data))]           # too long
        else:
            h = rng.choice([b"400", b"-400", b"2147483647", b"100000"])
            data = data + b"\n" + h + b" " + h + b" " + h + b" 1\n"    # huge HKL extents
    return data


def file_case(rng: random.Random) -> tuple[list[str], dict]:
    flag = rng.choice(sorted(VALID_FILES))
    name, data = VALID_FILES[flag]
    content = None if rng.random() < 0.04 else damage(rng, data)     # None: a directory
    base = [a for a in BASE if a not in ("-cell", "100", "90")] if flag == "-mat" else list(BASE)
    if flag == "-dump":
        return base, {name: content}     # read as the cache: no -hkl, no -default_F
    return base + [flag, name] + ([] if flag == "-hkl" else ["-default_F", "100"]), {name: content}


def _child(args: list[str], files: dict, workdir: str) -> None:
    """In the forked child: make the inputs, run main(), exit with its status (never returns)."""
    status = 99
    try:
        os.chdir(workdir)
        for name, content in files.items():
            if content is None:
                os.mkdir(name)
            else:
                with open(name, "wb") as stream:
                    stream.write(content)
        with open("stdout.log", "w") as out, open("stderr.log", "w") as err:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            sys.stdout, sys.stderr = os.fdopen(os.dup(1), "w"), os.fdopen(os.dup(2), "w")
        try:
            status = cli.main(args)
        except BaseException:  # what the interpreter would print
            traceback.print_exc()
            status = 98
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status if isinstance(status, int) else 97)


def run_case(args: list[str], files: dict, timeout: float) -> dict:
    workdir = tempfile.mkdtemp(prefix="fuzz-")
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(args, files, workdir)
    status = None
    while status is None:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(raw)
        elif time.monotonic() - started > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = "timeout"
        else:
            time.sleep(0.005)
    try:
        return _classify(args, files, workdir, status)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _classify(args, files, workdir, status) -> dict:
    def read(name):
        with contextlib.suppress(OSError), open(os.path.join(workdir, name), errors="replace") as stream:
            return stream.read()
        return ""

    err = read("stderr.log")
    left = sorted(set(os.listdir(workdir)) - set(files) - {"stdout.log", "stderr.log"})
    outcome = {"args": args, "files": {k: None if v is None else len(v) for k, v in files.items()},
               "status": status, "stderr": err[-400:]}
    if status == "timeout":
        raised = any(a.startswith(("--max-work", "--max-memory")) for a in args)
        outcome["kind"] = "slow_raised_limit" if raised else "hang"
    elif "Traceback" in err or status not in (0, 1, 2, 130):
        outcome["kind"] = "traceback"
    elif status == 0:
        outcome["kind"] = "accepted"
        float_name = _output_name(args, ("-floatfile", "-floatimage"), "floatimage.bin")
        path = os.path.join(workdir, float_name)
        if os.path.isfile(path) and not np.isfinite(np.fromfile(path, dtype=np.float32)).all():
            outcome["kind"] = "nan_image"
    elif err.count("\n") != 1 or not err.startswith("arraybragg: error: "):
        outcome["kind"] = "not_one_line"
    elif left:
        outcome["kind"], outcome["left"] = "left_behind", left
    else:
        outcome["kind"] = "refused"
    return outcome


def _output_name(args, flags, default):
    name = default
    for index, token in enumerate(args[:-1]):
        if token in flags:
            name = args[index + 1]
    return name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grammar", type=int, default=4000, help="flag-line cases (default 4000)")
    parser.add_argument("--files", type=int, default=4000, help="damaged-file cases (default 4000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a case counts as a hang")
    parser.add_argument("--max-work", default="1e6", help="ARRAYBRAGG_MAX_WORK for the children")
    parser.add_argument("--show", type=int, default=5, help="examples printed per failure kind")
    parser.add_argument("--json", help="write every non-clean outcome to this file")
    options = parser.parse_args(argv)
    os.environ["ARRAYBRAGG_MAX_WORK"] = options.max_work
    rng = random.Random(options.seed)
    counts = {"grammar": collections.Counter(), "files": collections.Counter()}
    bad = []
    started = time.monotonic()
    for family, number, make in (("grammar", options.grammar, grammar_case), ("files", options.files, file_case)):
        for index in range(number):
            if index and index % 500 == 0:
                print(f"{family}: {index} cases, {dict(counts[family])}", file=sys.stderr, flush=True)
            outcome = run_case(*make(rng), options.timeout)
            counts[family][outcome["kind"]] += 1
            if outcome["kind"] not in ("accepted", "refused"):   # slow_raised_limit is listed too
                outcome["family"] = family
                bad.append(outcome)
    _report(counts, bad, options, time.monotonic() - started)
    if options.json:
        with open(options.json, "w") as stream:
            json.dump({"counts": counts, "bad": bad}, stream, indent=1)
    return 1 if any(outcome["kind"] != "slow_raised_limit" for outcome in bad) else 0


def _report(counts, bad, options, seconds) -> None:
    kinds = ("accepted", "refused", "traceback", "hang", "nan_image", "not_one_line", "left_behind",
             "slow_raised_limit")
    print("%-8s %6s " % ("cases", "total") + " ".join("%12s" % k for k in kinds))
    for family, counter in counts.items():
        print("%-8s %6d " % (family, sum(counter.values())) + " ".join("%12d" % counter[k] for k in kinds))
    print("%.0f s, seed %d, timeout %g s, max work %s" % (seconds, options.seed, options.timeout, options.max_work))
    shown = collections.Counter()
    for outcome in bad:
        if shown[outcome["kind"]] < options.show:
            shown[outcome["kind"]] += 1
            print(f"--- {outcome['kind']} ({outcome['family']}): {' '.join(outcome['args'])} {outcome['files']}")
            print(outcome["stderr"].rstrip()[-300:])


if __name__ == "__main__":
    sys.exit(main())
