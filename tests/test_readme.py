"""The README's Python example runs as written (with an original checkpoint saved as weights.pth)."""

import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    assert blocks, "README has no python example"
    # A checkpoint the original wrote (tiny config) stands in for the released weights.
    shutil.copy(REPO / "tests" / "fixtures" / "tiny_weight_norm.pth", tmp_path / "weights.pth")
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "example.dac").exists()
