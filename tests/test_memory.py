"""Peak memory is bounded by the tile size, not the detector size (slow: a 4096 x 4096 frame)."""
from __future__ import annotations

import resource
import subprocess
import sys

import numpy as np
import pytest


@pytest.mark.slow
def test_4096_square_detector_oversample_4_within_2_gb(tmp_path):
    args = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-lambda", "1",
            "-distance", "100", "-pixel", "0.05", "-detpixels", "4096", "-oversample", "4",
            "-floatfile", "big.bin", "-intfile", "big.img", "-nonoise", "-nopgm", "--dtype", "float32"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    run = subprocess.run([sys.executable, "-m", "arraybragg", *args], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # largest child so far (Linux: KiB)
    assert peak_kib < 2 * 1024 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB (before: {before / 1024:.0f} MiB)"
    image = np.fromfile(tmp_path / "big.bin", dtype=np.float32).reshape(4096, 4096)
    assert image.max() > 0 and np.isfinite(image).all()


MALLOC_PROBE = """
import resource, sys, numpy as np
from arraybragg.backend import keep_freed_host_memory
if sys.argv[1] == "on":
    assert keep_freed_host_memory()
sizes = [1 << 16, 3 << 17, 1 << 18, 5 << 16]          # temporaries of 0.5-2.5 MiB, as in a render
for _ in range(3):
    arrays = [np.ones(n) for n in sizes]; del arrays
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    arrays = [np.ones(n) for n in sizes]; del arrays
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning (Linux)")
def test_freed_host_memory_is_reused_without_page_faults():
    """Render temporaries freed and allocated again come back without fresh page faults."""
    faults = {}
    for mode in ("off", "on"):
        run = subprocess.run([sys.executable, "-c", MALLOC_PROBE, mode], capture_output=True, text=True)
        if run.returncode != 0 and mode == "on":
            pytest.skip("not glibc: " + run.stderr.strip().splitlines()[-1])
        faults[mode] = int(run.stdout)
    assert faults["on"] * 100 < faults["off"], faults
