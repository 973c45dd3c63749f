"""The ORIGINAL's DSP (audiotools 0.7.2, julius, pyloudnorm) on arrays: reference side of the DSP checks.

Runs under the reference interpreter only. Used two ways:

* imported by ``scripts/make_fixtures_dsp.py`` (the ``reference_*`` functions);
* as a script by ``tests/parity/test_dsp_parity.py``: ``reference_dsp.py IN.npz OUT.npz`` reads a JSON
  task list (``tasks``) and input arrays from IN.npz and writes one output array per task to OUT.npz.

Mel filters: audiotools builds them with ``librosa.filters.mel``, but librosa is not installed in the
reference environment (install.sh skips audiotools' heavy optional dependencies) and must not be added.
torchaudio's ``melscale_fbanks(norm="slaney", mel_scale="slaney")`` implements the same Slaney formula
(its code says "adopted from librosa"); run in float64 and rounded to float32 it stands in for librosa's
float32 output, so ``AudioSignal.get_mel_filters`` is swapped for it below. Everything else in
``AudioSignal.mel_spectrogram`` (the STFT, the magnitude, the matmul) is the original's own code.
"""

from __future__ import annotations

import json
import sys
import warnings

warnings.filterwarnings("ignore")

import numpy as np
import torch

torch.set_num_threads(2)


def reference_mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """librosa's ``filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)``, via torchaudio."""
    import torchaudio.functional as AF

    fmax = sr / 2.0 if fmax is None else fmax
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        bank = AF.melscale_fbanks(n_fft // 2 + 1, fmin, fmax, n_mels, sr, norm="slaney", mel_scale="slaney")
    finally:
        torch.set_default_dtype(previous)
    return bank.T.numpy().astype(np.float32)  # [n_mels, bins]


def _audio_signal():
    from audiotools import AudioSignal

    AudioSignal.get_mel_filters = staticmethod(reference_mel_filters)
    return AudioSignal


def reference_loudness(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """``AudioSignal(x, sr).loudness()`` for ``x [B, C, T]``: ``[B]`` LUFS."""
    return _audio_signal()(torch.from_numpy(x), sample_rate).loudness().numpy()


def reference_pyloudnorm(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """pyloudnorm's ``Meter(sr).integrated_loudness`` per batch item (float64 samples). ``[B]``."""
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    return np.array([meter.integrated_loudness(item.T.astype(np.float64)) for item in x])


def reference_resample(x: np.ndarray, old_sr: int, new_sr: int) -> np.ndarray:
    import julius

    return julius.resample_frac(torch.from_numpy(x), old_sr, new_sr).numpy()


def reference_stft(x: np.ndarray, sample_rate: int, window_length: int, match_stride: bool) -> np.ndarray:
    """``AudioSignal.stft(window_length, window_length // 4, "hann", match_stride)``: complex ``[B, C, bins, F]``."""
    signal = _audio_signal()(torch.from_numpy(x), sample_rate)
    return signal.stft(window_length, window_length // 4, "hann", match_stride=match_stride).numpy()


def reference_istft(x: np.ndarray, sample_rate: int, window_length: int, match_stride: bool) -> np.ndarray:
    """audiotools' own round trip ``stft()`` then ``istft()``: ``[B, C, T]``."""
    signal = _audio_signal()(torch.from_numpy(x), sample_rate)
    signal.stft(window_length, window_length // 4, "hann", match_stride=match_stride)
    return signal.istft(window_length, window_length // 4, "hann", match_stride=match_stride).audio_data.numpy()


def reference_mel(
    x: np.ndarray, sample_rate: int, window_length: int, n_mels: int, fmin: float, fmax, match_stride: bool
) -> np.ndarray:
    """``AudioSignal.mel_spectrogram(n_mels, fmin, fmax, window_length=..., hop_length=w // 4, ...)``."""
    signal = _audio_signal()(torch.from_numpy(x), sample_rate)
    return signal.mel_spectrogram(
        n_mels, mel_fmin=fmin, mel_fmax=fmax, window_length=window_length, hop_length=window_length // 4,
        window_type="hann", match_stride=match_stride,
    ).numpy()


def run_task(task: dict, inputs) -> np.ndarray:
    op = task["op"]
    x = inputs[task["input"]] if "input" in task else None
    if op == "loudness":
        return reference_loudness(x, task["sample_rate"])
    if op == "pyloudnorm":
        return reference_pyloudnorm(x, task["sample_rate"])
    if op == "resample":
        return reference_resample(x, task["old_sr"], task["new_sr"])
    if op == "stft_magnitude":
        return np.abs(reference_stft(x, task["sample_rate"], task["window_length"], task["match_stride"]))
    if op == "stft":
        return reference_stft(x, task["sample_rate"], task["window_length"], task["match_stride"])
    if op == "istft":
        return reference_istft(x, task["sample_rate"], task["window_length"], task["match_stride"])
    if op == "mel":
        return reference_mel(
            x, task["sample_rate"], task["window_length"], task["n_mels"], task["fmin"], task["fmax"],
            task["match_stride"],
        )
    if op == "mel_filters":
        return reference_mel_filters(task["sample_rate"], task["n_fft"], task["n_mels"], task["fmin"], task["fmax"])
    raise ValueError(f"unknown task {op!r}")


def main(in_path: str, out_path: str) -> None:
    inputs = np.load(in_path)
    tasks = json.loads(str(inputs["tasks"]))
    np.savez(out_path, **{task["name"]: run_task(task, inputs) for task in tasks})


if __name__ == "__main__":
    main(*sys.argv[1:3])
