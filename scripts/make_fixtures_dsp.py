"""Golden DSP outputs of the ORIGINAL (audiotools 0.7.2, julius, pyloudnorm), for the main test suite.

Run under the reference interpreter (built by scripts/install_reference.sh):

    PYTHONPATH=tests:scripts .venv-reference/bin/python scripts/make_fixtures_dsp.py

Inputs are rebuilt from the recipes in tests/dsp/dsp_cases.py, so ``tests/fixtures/dsp.npz`` holds only
outputs, keyed ``<kind>/<case>``:

* ``loudness/<case>``: ``AudioSignal.loudness()`` ``[B]`` for every loudness and pyloudnorm case;
* ``pyloudnorm/<case>``: pyloudnorm's integrated loudness ``[B]`` for the block-aligned cases;
* ``resample/<old>_<new>``: ``julius.resample_frac`` of ``resample_input`` ``[2, 2, T']``;
* ``stft_magnitude/<window>_<match_stride>``: ``|AudioSignal.stft()|`` of ``stft_input()``, every window of
  DAC's mel loss, with and without match_stride; ``stft/512_<match_stride>``: the complex STFT;
* ``mel/<window>_<match_stride>``: ``AudioSignal.mel_spectrogram`` with DAC's band count for the window;
  ``mel_extra/<i>``: the MEL_EXTRA settings on ``mel_input``; ``filterbank/<i>``: the FILTERBANKS.

See tests/parity/reference_dsp.py for how the mel filters are obtained without librosa.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "dsp"), str(ROOT / "tests" / "parity")]

import numpy as np

import dsp_cases as cases
import reference_dsp as ref


def main() -> None:
    out: dict[str, np.ndarray] = {}
    for name, recipe in {**cases.LOUDNESS_CASES, **cases.PYLOUDNORM_CASES}.items():
        x, sr = cases.build(recipe)
        out[f"loudness/{name}"] = ref.reference_loudness(x, sr)
    for name, recipe in cases.PYLOUDNORM_CASES.items():
        x, sr = cases.build(recipe)
        out[f"pyloudnorm/{name}"] = ref.reference_pyloudnorm(x, sr)
    for old, new, n, seed in cases.RESAMPLE_CASES:
        out[f"resample/{old}_{new}"] = ref.reference_resample(cases.resample_input(old, n, seed), old, new)
    x = cases.stft_input()
    for window, n_mels in cases.MEL_BANDS.items():
        for match_stride in (False, True):
            key = f"{window}_{int(match_stride)}"
            spec = ref.reference_stft(x, cases.STFT_RATE, window, match_stride)
            out[f"stft_magnitude/{key}"] = np.abs(spec)
            if window == 512:
                out[f"stft/{key}"] = spec
            out[f"mel/{key}"] = ref.reference_mel(x, cases.STFT_RATE, window, n_mels, 0.0, None, match_stride)
    for i, (sr, window, n_mels, fmin, fmax) in enumerate(cases.MEL_EXTRA):
        out[f"mel_extra/{i}"] = ref.reference_mel(cases.mel_input(sr), sr, window, n_mels, fmin, fmax, False)
    for i, (sr, n_fft, n_mels, fmin, fmax) in enumerate(cases.FILTERBANKS):
        out[f"filterbank/{i}"] = ref.reference_mel_filters(sr, n_fft, n_mels, fmin, fmax)

    np.savez_compressed(cases.FIXTURE, **out)
    print(f"wrote {cases.FIXTURE} ({cases.FIXTURE.stat().st_size / 1e6:.2f} MB, {len(out)} arrays)")
    for key in out:
        if key.startswith(("loudness/", "pyloudnorm/")):
            print(f"  {key}: {np.round(out[key], 4)}")


if __name__ == "__main__":
    main()
