"""The README's Python examples run, in order, as one session (in a scratch directory)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    section = README.read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks()
    assert len(blocks) == 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    still, image, panels = namespace["still"], namespace["image"], namespace["panels"]
    assert still.shape == (256, 256) and still.max() > 0
    assert not np.array_equal(image, still)                        # the orientation changed the pattern
    assert [p.shape for p in panels] == [(128, 128)] * 4 and all(p.max() > 0 for p in panels)
    assert len(namespace["frames"]) == 3
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"{kind}_m{i}.{ext}" for i in range(4)
                             for kind, ext in (("float", "bin"), ("int", "img"), ("noise", "img")))
    raw = np.fromfile(tmp_path / "float_m2.bin", dtype=np.float32).reshape(128, 128)
    np.testing.assert_array_equal(raw, panels[2])
