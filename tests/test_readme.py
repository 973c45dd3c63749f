"""The README works as written: its Python examples run, its command-line block runs in a fresh shell,
and the commands it gives for the parity suite exist in this repository and are the ones CI and the
parity suite's skip message use."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
INSTALL_REFERENCE = "bash scripts/install_reference.sh .venv-reference"


def _blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else len(README)]


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """Every ```python block (the API example and the streaming example) runs, each in a fresh namespace."""
    blocks = _blocks("python")
    assert len(blocks) >= 2 and _blocks("python", _section("Streaming")), "README lacks its python examples"
    # A checkpoint the original wrote (tiny config) stands in for the released weights.
    shutil.copy(REPO / "tests" / "fixtures" / "tiny_weight_norm.pth", tmp_path / "weights.pth")
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "example.dac").exists()
    # No example is a sketch with elisions that nothing runs.
    assert "```text" not in README


def _fresh_shell_env(home: Path) -> dict[str, str]:
    """A login-like environment in which no virtual environment is active: PATH without its bin folder."""
    venv_bin = str(Path(sys.prefix) / "bin")
    path = [p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p and os.path.abspath(p) != venv_bin]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=os.pathsep.join(path), HOME=str(home), JAXDAC_CACHE_DIR=str(home / "cache"),
               JAXDAC_COMPILATION_CACHE=str(home / "xla"))
    return env


def test_readme_command_line_block_runs_in_a_fresh_shell(tmp_path):
    """The Command line section's bash block, run line by line as written by a new bash (no environment
    active, so ``jaxdac`` is on PATH only if the block puts it there) in a folder laid out like a clone
    after the Install step. The tiny original checkpoint stands in for the released 44.1 kHz weights in
    the download cache, so nothing goes to the network."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").exists() or not (venv / "bin" / "jaxdac").exists():
        pytest.skip(f"the tests do not run from a virtual environment with jaxdac installed ({venv})")
    (block,) = _blocks("bash", _section("Command line"))
    assert block.splitlines()[0].startswith("source .venv/bin/activate")

    work = tmp_path / "clone"
    work.mkdir()
    (work / ".venv").symlink_to(venv)
    rng = np.random.default_rng(0)
    sf.write(work / "song.wav", (0.1 * rng.standard_normal((22050, 2))).astype(np.float32), 44100)
    (work / "podcasts" / "2024").mkdir(parents=True)
    sf.write(work / "podcasts" / "2024" / "episode.flac", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    weights = REPO / "tests" / "fixtures" / "tiny_weight_norm.pth"
    shutil.copy(weights, work / "weights.pth")
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(weights, cache / "weights_44khz_8kbps_0.0.1.pth")  # where `download` keeps the release

    proc = subprocess.run(["bash", "--norc", "--noprofile", "-e", "-c", block], cwd=work, capture_output=True,
                          text=True, env=_fresh_shell_env(tmp_path), timeout=600)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert (work / "codes" / "song.dac").exists() and (work / "codes" / "2024" / "episode.dac").exists()
    assert sf.info(str(work / "decoded" / "2024" / "episode.wav")).frames == 16000
    assert "duration:     0.500 s (22050 samples)" in proc.stdout  # jaxdac info codes/song.dac
    assert str(cache / "weights_44khz_8kbps_0.0.1.pth") in proc.stdout  # jaxdac download
    assert (work / "weights.safetensors").exists()
    assert "usage: jaxdac" in proc.stdout  # python -m jaxdac --help


def test_parity_setup_lives_in_the_repository(tmp_path):
    """The reference environment is built by scripts/install_reference.sh from files in this repository;
    the README, CI and the parity suite's skip message all give that command."""
    script = REPO / "scripts" / "install_reference.sh"
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert "../" not in text and "shared" not in text  # nothing from outside the repository
    copied = re.findall(r'cp "\$HERE/([^"]+)"', text)
    assert copied == ["reference_lfilter_patch.py"] and (REPO / "scripts" / copied[0]).exists()
    assert INSTALL_REFERENCE in _blocks("bash", _section("Tests"))[1]
    assert "bash scripts/install_reference.sh .venv-reference" in (REPO / ".ci" / "run").read_text()
    for text in (_section("Tests"), (REPO / ".ci" / "run").read_text(), (REPO / "tests" / "parity" / "conftest.py").read_text()):
        assert "shared/reference" not in text, text

    # Without a reference interpreter the parity tests skip, saying how to build one.
    env = {**os.environ, "JAXDAC_REFERENCE_PYTHON": str(tmp_path / "missing" / "python")}
    env.pop("JAXDAC_REQUIRE_REFERENCE", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/parity/test_files_parity.py::test_jaxdac_file_loads_in_the_original"],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout + proc.stderr
    assert f"build it with `{INSTALL_REFERENCE}`" in proc.stdout, proc.stdout
