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
