"""Process settings the command-line programs make before NumPy is imported (arraybragg.process)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

SHOW = "import os; print(os.environ.get('OPENBLAS_NUM_THREADS'), os.environ.get('NUMPY_MADVISE_HUGEPAGE'))"


def _settings(program: str, env_extra: dict, first: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "NUMPY_MADVISE_HUGEPAGE")}
    env.update(env_extra)
    code = f"{first}import {program}; {SHOW}"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("program, expected", [("arraybragg.cli", "1 None"), ("arraybragg.tools.noisify", "1 0")])
def test_programs_ask_openblas_for_one_thread(program, expected):
    assert _settings(program, {}) == expected
    assert _settings(program, {"OPENBLAS_NUM_THREADS": "4"}).startswith("4 ")  # the user's value is kept


def test_no_change_once_numpy_is_imported():
    """A library caller that imported NumPy first keeps its process as it is."""
    assert _settings("arraybragg.tools.noisify", {}, first="import numpy; ") == "None None"


def test_installed_python_env_drops_only_the_no_bytecode_setting(monkeypatch):
    from arraybragg.process import installed_python_env
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("ARRAYBRAGG_SOMETHING", "kept")
    env = installed_python_env()
    assert "PYTHONDONTWRITEBYTECODE" not in env and env["ARRAYBRAGG_SOMETHING"] == "kept"


def test_finish_flushes_then_exits_at_once():
    code = ("import atexit, sys; from arraybragg.process import finish; atexit.register(print, 'teardown');"
            " sys.stdout.write('x' * 100000); sys.stderr.write('e'); finish(3)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "x" * 100000, "e")


def test_finish_reports_output_it_could_not_flush(monkeypatch):
    """A flush that fails (the reader of a pipe is gone) turns a zero status into 1, and keeps any other."""
    import arraybragg.process as process

    class ClosedPipe:
        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    def exit_now(status):
        raise SystemExit(status)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    monkeypatch.setattr(process.os, "_exit", exit_now)
    for status, expected in ((0, 1), (2, 2)):
        with pytest.raises(SystemExit) as ended:
            process.finish(status)
        assert ended.value.code == expected
