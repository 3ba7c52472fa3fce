"""Compare a C pixel trace with an arraybragg pixel trace, field by field.

Both programs print one pixel's intermediate values as trace lines:

* ``TRACE_C: name v1 v2 ...`` or ``TRACE_C:name=value`` (arraybragg: ``TRACE_PY``),
* channel lines such as ``TRACE_C_PHI phi_tic=0 k_frac=...`` (arraybragg: ``TRACE_PY_PHI``).

Every other line (``TRACE:``, ``TRACE_CONFIG:``, program chatter) is ignored. Each trace line becomes
one or more records ``(name, occurrence, value)``; a line made of ``key=value`` / ``key:value`` groups
becomes one record per key (``PHI[0].k_frac``), so a divergence is pinned to a single quantity.
Records are matched by name and occurrence (the n-th time that name was printed), which keeps
repeated per-subpixel blocks apart. Numbers match within a relative tolerance (relative to the C
value) or an absolute one; text matches exactly after trimming.

Exit status: 0 all C fields match, 1 a field differs or is missing from the arraybragg trace
(fields only arraybragg prints are listed as EXTRA and do not fail), 2 usage or file error.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

from arraybragg.errors import InputError

DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-12

OK, DIFF, MISSING, EXTRA = "OK", "DIFF", "MISSING", "EXTRA"
FAILING_STATUSES = (DIFF, MISSING)

# ``TRACE_C`` / ``TRACE_PY`` with an optional upper-case channel (``_PHI``), then ':' or blank,
# at the start of a line or after white space: nanoBragg prints one warning without a newline, which
# glues the next trace line onto it.  ``TRACE:`` and ``TRACE_CONFIG:`` carry no comparable values.
_TRACE_LINE = re.compile(r"(?:^|(?<=\s))TRACE_(?:C|PY)(?:_([A-Z0-9]+(?:_[A-Z0-9]+)*))?(?::|\s)(.*)$")
# A token that opens a key/value group: ``phi_tic=0``, ``rotx:0``, ``X:6e-06``.
_KEY_TOKEN = re.compile(r"^([A-Za-z_]\w*)[=:](.*)$")
_VALUE_WIDTH = 40

Value = Union[tuple, str]


def _record_name(group: str, key: str | None) -> str:
    return group if key is None else f"{group}.{key}"


@dataclass(frozen=True)
class TraceRecord:
    """One comparable quantity of a trace.

    group: the line's field name (``F_latt``, ``angles_rad``, ``PHI``, ``TAP5.steps``);
    key: the key inside a key/value line (``k_frac``) or None;
    occurrence: how many times this name was printed before (0-based);
    value: tuple of floats, or the trimmed text when the value is not numeric;
    line: 1-based line number in its file.
    """

    group: str
    key: str | None
    occurrence: int
    value: Value
    line: int

    @property
    def name(self) -> str:
        return _record_name(self.group, self.key)

    @property
    def label(self) -> str:
        base = f"{self.group}[{self.occurrence}]"
        return base if self.key is None else f"{base}.{self.key}"


@dataclass(frozen=True)
class FieldResult:
    """Outcome for one matched (or unmatched) record; max_rel_err is None for text/shape mismatch."""

    c: TraceRecord | None
    py: TraceRecord | None
    max_rel_err: float | None
    status: str

    @property
    def record(self) -> TraceRecord:
        return self.c if self.c is not None else self.py


@dataclass(frozen=True)
class TraceComparison:
    """All field results: C records in C order, then records only the PY trace has."""

    results: list
    rtol: float
    atol: float

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)

    @property
    def compared(self) -> int:
        return sum(1 for result in self.results if result.c is not None and result.py is not None)

    @property
    def first_divergence(self) -> FieldResult | None:
        return next((r for r in self.results if r.status in FAILING_STATUSES), None)

    @property
    def passed(self) -> bool:
        return self.first_divergence is None


# ----------------------------------------------------------------------------------------- parsing


def parse_value(text: str) -> Value:
    """Numbers of a value as a tuple of floats (``[a b c; d e f]`` matrices flattened), else the text."""
    stripped = text.strip()
    body = stripped
    if len(stripped) >= 2 and stripped[0] == "[" and stripped[-1] == "]":
        body = stripped[1:-1].replace(";", " ").replace(",", " ")
    tokens = body.split()
    if not tokens:
        return stripped
    try:
        return tuple(float(token) for token in tokens)
    except ValueError:
        return stripped


def _key_groups(text: str) -> list:
    """``k1=v k2:v v ...`` as [(key, value)], tokens without a key extending the previous value;
    [] when the text does not start with a key token."""
    tokens = text.split()
    if not tokens or not _KEY_TOKEN.match(tokens[0]):
        return []
    groups = []
    for token in tokens:
        match = _KEY_TOKEN.match(token)
        if match:
            groups.append((match.group(1), [match.group(2)] if match.group(2) else []))
        else:
            groups[-1][1].append(token)
    return [(key, parse_value(" ".join(parts))) for key, parts in groups]


def _name_and_rest(payload: str) -> tuple:
    """Split ``name=value`` or ``name value...`` into (name, value text)."""
    head, _, tail = payload.partition(" ")
    if "=" in head:
        name, _, rest = payload.partition("=")
        return name.strip(), rest
    return head.rstrip(":"), tail


def _payload_entries(channel: str | None, payload: str) -> list:
    """(group, key, value) entries of one trace line's payload."""
    if not payload:
        return []
    if channel and _KEY_TOKEN.match(payload.split()[0]):
        return [(channel, key, value) for key, value in _key_groups(payload)]
    name, rest = _name_and_rest(payload)
    group = f"{channel}.{name}" if channel else name
    keyed = _key_groups(rest)
    if keyed:
        return [(group, key, value) for key, value in keyed]
    return [(group, None, parse_value(rest))]


def parse_trace_lines(lines: Iterable[str]) -> list:
    """Records of all trace lines, in file order; non-trace lines are skipped."""
    records = []
    seen = Counter()
    for number, line in enumerate(lines, start=1):
        match = _TRACE_LINE.search(line)
        if not match:
            continue
        for group, key, value in _payload_entries(match.group(1), match.group(2).strip()):
            name = _record_name(group, key)
            records.append(TraceRecord(group, key, seen[name], value, number))
            seen[name] += 1
    return records


def read_trace(path: str | Path, role: str) -> list:
    """Records of a trace file; InputError when it cannot be read or holds no trace line."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {role} trace {path}: {exc.strerror or exc}") from None
    records = parse_trace_lines(text.splitlines())
    if not records:
        raise InputError(f"{role} trace {path} has no TRACE_C/TRACE_PY lines")
    return records


# -------------------------------------------------------------------------------------- comparison


def compare_values(c_value: Value, py_value: Value, rtol: float, atol: float) -> tuple:
    """(matches, max relative error) of two values; the error is relative to the C value and None
    when the values are text or of different lengths."""
    if isinstance(c_value, str) or isinstance(py_value, str):
        return c_value == py_value, None
    if len(c_value) != len(py_value):
        return False, None
    matches, worst = True, 0.0
    for c_number, py_number in zip(c_value, py_value):
        if c_number == py_number or (math.isnan(c_number) and math.isnan(py_number)):
            continue
        difference = abs(py_number - c_number)  # inf or nan when only one side is non-finite
        scale = abs(c_number)
        within = difference <= atol or difference <= rtol * scale
        matches = matches and within
        error = difference / scale if scale > 0 and math.isfinite(difference) else math.inf
        worst = max(worst, error)
    return matches, worst


def compare_traces(c_records: list, py_records: list, rtol: float = DEFAULT_RTOL,
                   atol: float = DEFAULT_ATOL) -> TraceComparison:
    """Match records by (name, occurrence) and grade each pair."""
    unmatched_py = {(record.name, record.occurrence): record for record in py_records}
    results = []
    for c_record in c_records:
        py_record = unmatched_py.pop((c_record.name, c_record.occurrence), None)
        if py_record is None:
            results.append(FieldResult(c_record, None, None, MISSING))
            continue
        matches, error = compare_values(c_record.value, py_record.value, rtol, atol)
        results.append(FieldResult(c_record, py_record, error, OK if matches else DIFF))
    for py_record in py_records:
        if (py_record.name, py_record.occurrence) in unmatched_py:
            results.append(FieldResult(None, py_record, None, EXTRA))
    return TraceComparison(results, rtol, atol)


# ------------------------------------------------------------------------------------------ output


def _format_value(record: TraceRecord | None) -> str:
    if record is None:
        return "-"
    if isinstance(record.value, str):
        return record.value
    return " ".join(f"{number:.15g}" for number in record.value)


def _shorten(text: str, width: int = _VALUE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _format_error(error: float | None) -> str:
    return "-" if error is None else f"{error:.3g}"


def _describe(result: FieldResult) -> str:
    record = result.record
    where = f"C line {result.c.line}" if result.c is not None else f"PY line {result.py.line}"
    text = (f"{record.label} ({where}): {result.status}; C = {_format_value(result.c)}; "
            f"PY = {_format_value(result.py)}")
    if result.max_rel_err is not None:
        text += f"; max rel err {_format_error(result.max_rel_err)}"
    return text


def summary_line(comparison: TraceComparison) -> str:
    return (f"summary: {comparison.compared} fields compared, {comparison.count(DIFF)} diverging, "
            f"{comparison.count(MISSING)} missing from PY trace, {comparison.count(EXTRA)} extra in "
            f"PY trace (rtol {comparison.rtol:g}, atol {comparison.atol:g}): "
            f"{'PASS' if comparison.passed else 'FAIL'}")


def format_report(comparison: TraceComparison, diffs_only: bool = False) -> str:
    """Per-field table, the first divergence in C order and a one-line summary."""
    rows = [result for result in comparison.results if not diffs_only or result.status != OK]
    width = max([len("field")] + [len(result.record.name) for result in rows])
    header = (f"{'field':<{width}}  {'occ':>4}  {'C value':<{_VALUE_WIDTH}}  "
              f"{'PY value':<{_VALUE_WIDTH}}  {'max rel err':>11}  status")
    lines = [header, "-" * len(header)]
    for result in rows:
        record = result.record
        lines.append(
            f"{record.name:<{width}}  {record.occurrence:>4}  "
            f"{_shorten(_format_value(result.c)):<{_VALUE_WIDTH}}  "
            f"{_shorten(_format_value(result.py)):<{_VALUE_WIDTH}}  "
            f"{_format_error(result.max_rel_err):>11}  {result.status}")
    first = comparison.first_divergence
    lines.append("first divergence: " + ("none" if first is None else _describe(first)))
    lines.append(summary_line(comparison))
    return "\n".join(lines)


def _json_number(number: float):
    return number if math.isfinite(number) else repr(number)


def _json_value(record: TraceRecord | None):
    if record is None:
        return None
    if isinstance(record.value, str):
        return record.value
    return [_json_number(number) for number in record.value]


def _json_result(result: FieldResult) -> dict:
    record = result.record
    return {
        "field": record.name,
        "occurrence": record.occurrence,
        "label": record.label,
        "c_value": _json_value(result.c),
        "py_value": _json_value(result.py),
        "max_rel_err": None if result.max_rel_err is None else _json_number(result.max_rel_err),
        "status": result.status,
        "c_line": None if result.c is None else result.c.line,
        "py_line": None if result.py is None else result.py.line,
    }


def comparison_to_json(comparison: TraceComparison, c_path: str, py_path: str) -> dict:
    """JSON-ready form of the comparison (non-finite numbers as strings such as 'inf')."""
    first = comparison.first_divergence
    return {
        "c_trace": str(c_path),
        "py_trace": str(py_path),
        "tolerance": comparison.rtol,
        "abs_tolerance": comparison.atol,
        "fields": [_json_result(result) for result in comparison.results],
        "first_divergence": None if first is None else _json_result(first),
        "summary": {
            "compared": comparison.compared,
            "diverging": comparison.count(DIFF),
            "missing": comparison.count(MISSING),
            "extra": comparison.count(EXTRA),
            "passed": comparison.passed,
        },
    }


# --------------------------------------------------------------------------------------------- CLI


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line (exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _tolerance(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


_tolerance.__name__ = "non-negative number"  # argparse names the type in its error message


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="arraybragg-trace-diff",
        description="Compare a nanoBragg C pixel trace (TRACE_C lines) with an arraybragg pixel trace "
                    "(TRACE_PY lines) field by field and report the first divergence.",
        epilog="Exit status: 0 every C field matches; 1 a field differs or is missing from PY_TRACE "
               "(fields only in PY_TRACE are EXTRA and do not fail); 2 usage or file error.")
    parser.add_argument("c_trace", metavar="C_TRACE", help="trace printed by the C program")
    parser.add_argument("py_trace", metavar="PY_TRACE", help="trace printed by arraybragg")
    parser.add_argument("--tolerance", type=_tolerance, default=DEFAULT_RTOL, metavar="RTOL",
                        help="relative tolerance, relative to the C value (default %(default)g)")
    parser.add_argument("--abs-tolerance", type=_tolerance, default=DEFAULT_ATOL, metavar="ATOL",
                        help="absolute tolerance; a value passes if within either (default %(default)g)")
    parser.add_argument("--json", metavar="FILE", help="also write the comparison as JSON to FILE")
    parser.add_argument("--diffs-only", action="store_true",
                        help="list only fields that are not OK in the table")
    return parser


def main(argv: list | None = None) -> int:
    parser = build_parser()
    try:
        options = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error: keep main() returning the status
        return int(exc.code or 0)
    try:
        c_records = read_trace(options.c_trace, "C")
        py_records = read_trace(options.py_trace, "PY")
        comparison = compare_traces(c_records, py_records, options.tolerance, options.abs_tolerance)
        print(format_report(comparison, options.diffs_only))
        if options.json:
            document = comparison_to_json(comparison, options.c_trace, options.py_trace)
            try:
                Path(options.json).write_text(json.dumps(document, indent=1) + "\n")
            except OSError as exc:
                raise InputError(f"cannot write --json {options.json}: {exc.strerror or exc}") from None
    except InputError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0 if comparison.passed else 1


if __name__ == "__main__":
    sys.exit(main())
