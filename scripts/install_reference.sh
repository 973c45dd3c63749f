#!/usr/bin/env bash
# Build a virtual environment holding the ORIGINAL PyTorch Descript Audio Codec
# (descript-audio-codec 1.0.0 + descript-audiotools 0.7.2) on a CPU-only machine,
# to compare the project against it (parity tests, fixtures, benchmarks).
#
#   bash scripts/install_reference.sh [VENV_DIR]      # default: .venv-reference (relative to the current folder)
#
# Needs python3 and the package index; uses nothing outside this repository (the lfilter patch beside it,
# scripts/reference_lfilter_patch.py). The parity suite (tests/parity), the fixture scripts
# (scripts/make_fixtures_*.py) and the benchmarks run under the environment it builds; CI (.ci/run)
# calls it when .venv-reference is missing.
#
# Why it is not a plain `pip install descript-audio-codec`:
#  * the package declares a bare `torch`, which would pull a multi-GB CUDA build;
#    torch==2.13.0 resolves to a local CPU wheel on these machines, so it is installed first;
#  * audiotools imports torchaudio at module level and uses torchaudio.functional.lfilter for
#    loudness; the only torchaudio wheels reachable are CUDA builds whose native libraries cannot
#    load beside CPU torch, so they are removed and torchaudio runs in its pure-Python mode;
#  * in that mode lfilter is a per-sample Python loop, so a .pth hook swaps in scipy's lfilter
#    (same difference equation, agrees with torchaudio's C kernel to ~1e-6 dB of loudness);
#  * librosa 0.10.2.post1 (the version of the original's era) is installed: audiotools builds its mel
#    filters with it, so the original's MelSpectrogramLoss runs as in its own training;
#  * other heavy optional dependencies of audiotools (matplotlib, ipython, visqol, ...) are skipped:
#    load audio with soundfile and wrap it in audiotools.AudioSignal(tensor[B, C, T], sr).
set -euo pipefail
VENV=${1:-.venv-reference}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python3 -m venv "$VENV"
PY="$VENV/bin/python"
PIP="$PY -m pip install -q --disable-pip-version-check"
SP=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

$PIP torch==2.13.0
$PIP --no-deps descript-audio-codec==1.0.0 descript-audiotools==0.7.2 torchaudio==2.11.0 tensorboard
rm -f "$SP"/torchaudio/lib/*.so
echo "torch==2.13.0" > "$VENV/constraints.txt"
$PIP -c "$VENV/constraints.txt" numpy scipy einops argbind tqdm julius soundfile flatten-dict ffmpy \
    importlib-resources rich randomname pyloudnorm protobuf absl-py packaging pytest librosa==0.10.2.post1

cp "$HERE/reference_lfilter_patch.py" "$SP/reference_lfilter_patch.py"
echo "import reference_lfilter_patch" > "$SP/reference_lfilter_patch.pth"

"$PY" - <<'PY'
import warnings; warnings.filterwarnings("ignore")
import torch, dac, audiotools, torchaudio.functional as F
assert F.lfilter.__module__ == "reference_lfilter_patch", F.lfilter.__module__
from audiotools import AudioSignal
from dac.nn.loss import MelSpectrogramLoss
x = AudioSignal(torch.zeros(1, 1, 4410) + 0.1, 44100)
MelSpectrogramLoss()(x, x)  # needs librosa's mel filters
print(f"reference ready: torch {torch.__version__}, dac {dac.__version__}, audiotools {audiotools.__version__}")
PY
