#!/usr/bin/env bash
# Download, HERE (PyPI reachable), the wheels that benchmarks/gpu/run.sh installs on the device machine,
# which has no network: the original DAC's Python packages that the device image lacks, and soundfile
# (+ cffi, pycparser), which jaxdac imports too. Versions are those of .venv-reference
# (scripts/install_reference.sh), known to work together; the image already holds torch, torchaudio,
# numpy, scipy, einops, rich, tqdm, numba, scikit-learn, jax, flax, optax, orbax (see
# /work/.library/device/KINDS.md, "Python packages already there").
#
#   bash benchmarks/gpu/prepare_wheels.sh [DIR]        # default benchmarks/gpu/wheels (about 5 MiB)
#
# The device image runs Python 3.12 on x86-64: compiled wheels are fetched for cp312 manylinux; a package
# published only as a source archive is built here into a pure-Python wheel. Then DIR is checked: every
# requirement of every wheel must be in DIR or in the image's package list (where that list is readable).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${1:-$REPO/benchmarks/gpu/wheels}
PY=${PY:-python3}
mkdir -p "$DIR"

PACKAGES=(
    # the original and its imports
    descript-audio-codec==1.0.0 descript-audiotools==0.7.2 argbind==0.3.9 docstring-parser==0.18.0
    julius==0.2.8 flatten-dict==0.5.0 ffmpy==1.0.0 importlib-resources==7.1.0 randomname==0.2.1 fire==0.7.1
    termcolor==3.3.0 pyloudnorm==0.2.0
    # librosa: audiotools builds the mel filters of the original's training losses with it
    librosa==0.10.2.post1 audioread==3.1.0 soxr==1.1.0 pooch==1.9.0 decorator==5.3.2 platformdirs==4.14.9
    # audio files: the original and jaxdac (jaxdac.io imports soundfile)
    soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
)
PLATFORM=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)

for spec in "${PACKAGES[@]}"; do
    if ! "$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$DIR" "$spec" 2>/dev/null; then
        echo "no wheel for $spec: building a pure-Python one from its source archive"
        "$PY" -m pip wheel -q --no-deps --no-binary :all: -w "$DIR" "$spec"
        whl=$(ls -t "$DIR"/*.whl | head -1)
        case "$whl" in
            *-py3-none-any.whl|*-py2.py3-none-any.whl) ;;
            *) echo "ERROR: $spec built a platform wheel ($whl), which will not run on the device"; exit 1 ;;
        esac
    fi
done

# Every requirement (no extras, markers for Python 3.12 on Linux) must be in DIR or in the image.
KINDS=/work/.library/device/KINDS.md
"$PY" - "$DIR" "$KINDS" <<'PY'
import re, sys, zipfile
from pathlib import Path

folder, kinds = Path(sys.argv[1]), Path(sys.argv[2])
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
wheels = sorted(folder.glob("*.whl"))
have = {norm(w.name.split("-")[0]) for w in wheels}
image = set()
if kinds.exists():
    text = kinds.read_text()
    block = text.split("## Python packages already there", 1)[-1]
    line = next((l for l in block.splitlines() if l.startswith("nvidia-h100-x1") or "Packages:" in l), "")
    image = {norm(p.strip(" .")) for p in line.split("Packages:", 1)[-1].split(",") if p.strip()}
env = {"python_version": "3.12", "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
       "platform_machine": "x86_64", "implementation_name": "cpython", "extra": ""}
# Imported by audiotools inside the functions that need them only (.venv-reference runs without them).
optional = {"ipython", "markdown2", "pystoi", "torch-stoi"}
missing = []
for w in wheels:
    with zipfile.ZipFile(w) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        for req in z.read(meta).decode().splitlines():
            if not req.startswith("Requires-Dist:"):
                continue
            spec, _, marker = req.split(":", 1)[1].partition(";")
            if "extra" in marker:
                continue
            if marker.strip():
                try:
                    from packaging.markers import Marker
                    if not Marker(marker).evaluate(env):
                        continue
                except Exception:
                    pass
            name = norm(re.split(r"[ <>=!~\[(]", spec.strip(), maxsplit=1)[0])
            if name not in have and name not in image and name not in optional:
                missing.append(f"{w.name}: {spec.strip()}")
total = sum(w.stat().st_size for w in wheels) / 2**20
print(f"{len(wheels)} wheels, {total:.1f} MiB in {folder}")
if not image:
    print(f"(no image package list at {kinds}: requirements not checked)")
elif missing:
    print("WARNING: requirements neither carried nor in the image:")
    print("\n".join(f"  {m}" for m in sorted(set(missing))))
else:
    print(f"every requirement is carried or in the image, except the optional {', '.join(sorted(optional))}")
PY
