"""jaxdac.dsp stands alone: it imports nothing from the model, IO, CLI, weights or training code."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

DSP = Path(__file__).resolve().parents[2] / "src" / "jaxdac" / "dsp"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the jaxdac.dsp package
                base = "jaxdac.dsp" if node.level == 1 else "jaxdac"
                names.add(f"{base}.{node.module}" if node.module else base)
            else:
                names.add(node.module)
    return names


def test_dsp_sources_import_only_dsp_from_jaxdac():
    files = sorted(DSP.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "loudness.py", "resample.py", "stft.py"}
    for path in files:
        for name in _imported_modules(path):
            top = name.split(".")[0]
            assert top not in {"torch", "torchaudio", "librosa", "julius", "audiotools"}, (path.name, name)
            if top == "jaxdac":
                assert name == "jaxdac.dsp" or name.startswith("jaxdac.dsp."), (path.name, name)


def test_importing_dsp_loads_no_other_jaxdac_module():
    # jaxdac/__init__.py imports the model; to see what dsp itself pulls in, import it under a bare
    # `jaxdac` package object that does not run that __init__.
    script = textwrap.dedent(
        f"""
        import sys, types
        package = types.ModuleType("jaxdac")
        package.__path__ = [{str(DSP.parent)!r}]
        sys.modules["jaxdac"] = package
        import jaxdac.dsp
        jaxdac.dsp.loudness, jaxdac.dsp.resample, jaxdac.dsp.stft, jaxdac.dsp.mel_spectrogram
        others = sorted(m for m in sys.modules if m.startswith("jaxdac.") and not m.startswith("jaxdac.dsp"))
        foreign = sorted(m for m in ("torch", "librosa", "flax") if m in sys.modules)
        print(others, foreign)
        assert not others and not foreign, (others, foreign)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.strip() == "[] []"
