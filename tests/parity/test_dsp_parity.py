"""Live parity of jaxdac.dsp with the original's DSP (audiotools 0.7.2, julius, pyloudnorm).

Builds inputs here, runs tests/parity/reference_dsp.py under the reference interpreter once for all of
them, and compares. Covers more and longer cases than the golden fixtures of tests/dsp.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dsp"))

import dsp_cases as cases  # noqa: E402
import signals  # noqa: E402
from jaxdac.dsp import istft, loudness, mel_filterbank, mel_spectrogram, resample, stft  # noqa: E402
from jaxdac.dsp.resample import resampled_length  # noqa: E402

REFERENCE_SCRIPT = Path(__file__).resolve().parent / "reference_dsp.py"

# Acceptance bounds.
LU_TOLERANCE = 0.01
RESAMPLE_TOLERANCE = 1e-5
SPECTRAL_TOLERANCE = 1e-4


def _loudness_inputs() -> dict[str, tuple[np.ndarray, int]]:
    # Longer and more varied signals than the fixtures (which tests/dsp checks), at every DAC rate.
    out = {}
    for sr in (16000, 24000, 44100, 48000):
        out[f"speech_8s_{sr}"] = (signals.speech_like(sr, 8.0, sr)[None, None], sr)
        out[f"music_6s_{sr}"] = (signals.music_like(sr, 6.0, sr + 1)[None, None], sr)
        out[f"stereo_batch_{sr}"] = (np.stack([signals.stereo(sr, 3.3, s) * g for s, g in ((1, 1.0), (2, 0.2))]), sr)
        out[f"clipped_{sr}"] = (signals.clipped(sr, 2.1, sr)[None, None], sr)
        for seconds in (0.1, 0.37):
            out[f"clip_{seconds}s_{sr}"] = (signals.mixture(sr, seconds, 7)[None, None], sr)
    out["silence_stereo_batch"] = (np.zeros((2, 2, 30000), np.float32), 24000)
    out["five_channels_44k"] = (np.stack([signals.mixture(44100, 2.5, s) for s in range(5)])[None], 44100)
    out["ragged_noise_22k"] = (signals.noise(22050, 1.234, 3, 0.2)[None, None], 22050)
    return out


def _pyloudnorm_inputs() -> dict[str, tuple[np.ndarray, int]]:
    # Lengths of block + k * hop samples and levels far above the gates, where both meters agree.
    out = {f"fixture_{name}": cases.build(recipe) for name, recipe in cases.PYLOUDNORM_CASES.items()}
    for sr in (16000, 24000, 44100, 48000):
        block, hop = int(0.4 * sr), int(0.4 * sr * 0.25)
        n = block + 25 * hop
        out[f"mixture_{sr}"] = (signals.mixture(sr, n / sr, sr)[None, None][..., :n], sr)
        out[f"stereo_{sr}"] = (signals.stereo(sr, n / sr, sr)[None][..., :n], sr)
    return out


RESAMPLE_PAIRS = [(48000, 44100), (44100, 24000), (22050, 16000), (16000, 44100), (8000, 44100),
                  (44100, 16000), (24000, 44100), (44100, 48000), (32000, 24000)]
LENGTH_PROBES = [1, 2, 3, 7, 100, 147, 160, 441, 1001, 4799]


def _resample_input(old: int, seconds: float, seed: int) -> np.ndarray:
    """``[3, 2, T]``: the fixture recipe's four channels plus speech and full-scale clipped music."""
    n = int(seconds * old) + seed % 7
    base = cases.resample_input(old, n, seed).reshape(4, n)
    extra = np.stack([signals.speech_like(old, seconds + 0.01, seed)[:n], signals.clipped(old, seconds + 0.01, seed)[:n]])
    return np.concatenate([base, extra]).reshape(3, 2, n)


SPECTRAL_RATE = 44100


def _spectral_input() -> np.ndarray:
    return np.stack([signals.stereo(SPECTRAL_RATE, 1.0, 50), signals.stereo(SPECTRAL_RATE, 1.0, 51)])[..., :44100 - 37]


FILTERBANK_CONFIGS = [
    (sr, n_fft, n_mels, fmin, fmax)
    for sr in (16000, 24000, 44100)
    for n_fft, n_mels in ((32, 5), (256, 40), (1024, 80), (2048, 320))
    for fmin, fmax in ((0.0, None), (50.0, sr / 2 - 1000))
]


@pytest.fixture(scope="module")
def parity(run_reference, tmp_path_factory):
    """Every input and the reference's output for it: ``(inputs, outputs)`` keyed by task name."""
    arrays: dict[str, np.ndarray] = {}
    tasks: list[dict] = []

    def add(name: str, op: str, x: np.ndarray | None = None, **params):
        task = {"name": name, "op": op, **params}
        if x is not None:
            arrays[f"x/{name}"] = np.ascontiguousarray(x, np.float32)
            task["input"] = f"x/{name}"
        tasks.append(task)

    for name, (x, sr) in _loudness_inputs().items():
        add(f"loudness/{name}", "loudness", x, sample_rate=sr)
    for name, (x, sr) in _pyloudnorm_inputs().items():
        add(f"pyloudnorm/{name}", "pyloudnorm", x, sample_rate=sr)
        add(f"loudness/aligned_{name}", "loudness", x, sample_rate=sr)
    for i, (old, new) in enumerate(RESAMPLE_PAIRS):
        add(f"resample/{old}_{new}", "resample", _resample_input(old, 1.5, i), old_sr=old, new_sr=new)
        for n in LENGTH_PROBES:
            add(f"resample_length/{old}_{new}_{n}", "resample", np.ones((1, 1, n)), old_sr=old, new_sr=new)
    x = _spectral_input()
    for window, n_mels in cases.MEL_BANDS.items():
        for match_stride in (False, True):
            key = f"{window}_{int(match_stride)}"
            add(f"stft_magnitude/{key}", "stft_magnitude", x, sample_rate=SPECTRAL_RATE, window_length=window,
                match_stride=match_stride)
            add(f"mel/{key}", "mel", x, sample_rate=SPECTRAL_RATE, window_length=window, n_mels=n_mels, fmin=0.0,
                fmax=None, match_stride=match_stride)
        add(f"istft/{window}", "istft", x, sample_rate=SPECTRAL_RATE, window_length=window, match_stride=False)
    for i, (sr, n_fft, n_mels, fmin, fmax) in enumerate(FILTERBANK_CONFIGS):
        add(f"mel_filters/{i}", "mel_filters", sample_rate=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)

    directory = tmp_path_factory.mktemp("dsp_parity")
    np.savez(directory / "in.npz", tasks=cases.tasks_json(tasks), **arrays)
    run_reference(REFERENCE_SCRIPT, directory / "in.npz", directory / "out.npz")
    with np.load(directory / "out.npz") as out:
        outputs = {k: out[k] for k in out.files}
    inputs = {task["name"]: (arrays.get(task.get("input", ""), None), task) for task in tasks}
    return inputs, outputs


def _report(label: str, value: float) -> None:
    print(f"[dsp parity] {label}: {value:.3g}")


def test_loudness_matches_audiotools(parity):
    inputs, outputs = parity
    worst, worst_name = 0.0, ""
    for name, (x, task) in inputs.items():
        if task["op"] != "loudness":
            continue
        ours = np.asarray(loudness(x, task["sample_rate"]))
        ref = outputs[name]
        assert ours.shape == ref.shape, name
        err = float(np.abs(ours - ref).max())
        assert err < LU_TOLERANCE, (name, ours, ref)
        worst, worst_name = max((worst, worst_name), (err, name))
    _report(f"loudness worst |jaxdac - audiotools| LU ({worst_name})", worst)


def test_loudness_matches_pyloudnorm_where_definitions_agree(parity):
    inputs, outputs = parity
    worst = 0.0
    for name, (x, task) in inputs.items():
        if task["op"] != "pyloudnorm":
            continue
        ours = np.asarray(loudness(x, task["sample_rate"]))
        err = float(np.abs(ours - outputs[name]).max())
        assert err < LU_TOLERANCE, (name, ours, outputs[name])
        worst = max(worst, err)
    _report("loudness worst |jaxdac - pyloudnorm| LU (aligned cases)", worst)


@pytest.mark.parametrize("old, new", RESAMPLE_PAIRS)
def test_resample_matches_julius(parity, old, new):
    inputs, outputs = parity
    x, _ = inputs[f"resample/{old}_{new}"]
    ours = np.asarray(resample(x, old, new))
    ref = outputs[f"resample/{old}_{new}"]
    assert ours.shape == ref.shape
    err = float(np.abs(ours - ref).max())
    _report(f"resample {old}->{new} [3, 2, {x.shape[-1]}] max abs error", err)
    assert err < RESAMPLE_TOLERANCE
    for n in LENGTH_PROBES:
        length = outputs[f"resample_length/{old}_{new}_{n}"].shape[-1]
        assert resampled_length(n, old, new) == length, n
        if n in (1, 1001):  # and the function really returns that many samples (one compile per length)
            assert resample(np.ones((1, 1, n), np.float32), old, new).shape[-1] == length, n


@pytest.mark.parametrize("window", list(cases.MEL_BANDS))
def test_stft_and_mel_match_audiotools(parity, window):
    inputs, outputs = parity
    for match_stride in (False, True):
        key = f"{window}_{int(match_stride)}"
        x, _ = inputs[f"stft_magnitude/{key}"]
        magnitude = np.abs(np.asarray(stft(x, window, match_stride=match_stride)))
        ref = outputs[f"stft_magnitude/{key}"]
        assert magnitude.shape == ref.shape
        mag_err = float(np.abs(magnitude - ref).max())
        n_mels = cases.MEL_BANDS[window]
        mel = np.asarray(mel_spectrogram(x, SPECTRAL_RATE, window, n_mels=n_mels, match_stride=match_stride))
        mel_err = float(np.abs(mel - outputs[f"mel/{key}"]).max())
        _report(f"stft {key}: |magnitude| error (peak {ref.max():.0f})", mag_err)
        _report(f"mel  {key}: error (peak {outputs[f'mel/{key}'].max():.1f})", mel_err)
        assert mag_err < SPECTRAL_TOLERANCE and mel_err < SPECTRAL_TOLERANCE
    # Without match_stride audiotools' own istft round trip is exact, and so is ours.
    x, _ = inputs[f"istft/{window}"]
    ours = np.asarray(istft(stft(x, window), window, length=x.shape[-1]))
    np.testing.assert_allclose(ours, outputs[f"istft/{window}"], atol=1e-5)
    np.testing.assert_allclose(ours, x, atol=1e-5)


def test_mel_filterbank_is_slaney(parity):
    _, outputs = parity
    worst = 0.0
    for i, (sr, n_fft, n_mels, fmin, fmax) in enumerate(FILTERBANK_CONFIGS):
        ref = outputs[f"mel_filters/{i}"]
        ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
        assert ours.shape == ref.shape
        worst = max(worst, float(np.abs(ours - ref).max() / ref.max()))
    _report("mel filterbank worst relative error", worst)
    assert worst < 1e-6

