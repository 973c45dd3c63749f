"""Live compress / decompress parity with the original, and DAC files crossing between the two."""

from pathlib import Path

import numpy as np
import pytest

import inference_cases
import model_cases
import signals
from jaxdac import inference
from jaxdac.io.dacfile import read_dac_file, write_dac_file
from model_parity import seeded_model

HERE = Path(__file__).parent
AUDIO_ATOL = 1e-3

# The fixture cases (tiny models) plus full-size 44.1 kHz runs: stereo 48 kHz input chunked at 1 s,
# and mono audio shorter than the window.
CASES = dict(inference_cases.CASES)
CASES["full44_stereo48_w1"] = ("dac_44khz", 48000, 2, 3.0, 1.0)
CASES["full44_short_w5"] = ("dac_44khz", 44100, 1, 2.0, 5.0)
CASES["full16_w1.5"] = ("dac_16khz", 16000, 1, 3.0, 1.5)

_models = {}


def _model(case):
    if case not in _models:
        _models[case] = seeded_model(case)
    return _models[case]


def _audio(name):
    case, sr, channels, seconds, _ = CASES[name]
    seed = model_cases.seed_of(name) + 11
    chans = [signals.speech_like(sr, seconds, seed), signals.music_like(sr, seconds, seed)][:channels]
    return np.stack(chans)[None].astype(np.float32), sr


@pytest.mark.parametrize("name", list(CASES))
def test_compress_decompress_and_files_match_original_live(name, run_reference, tmp_path):
    case, _, _, _, win = CASES[name]
    audio, sr = _audio(name)
    np.save(tmp_path / "input.npy", audio)
    run_reference(HERE / "reference_inference_run.py", "compress", name, case, win, tmp_path / "input.npy", sr, tmp_path)
    ref = dict(np.load(tmp_path / "original.npz"))

    model = _model(case)
    ours = inference.compress(model, audio, sr, win_duration=win, chunking="legacy")
    np.testing.assert_array_equal(ours.codes, ref["file.codes"].astype(np.int64))
    assert ours.chunk_length == ref["file.chunk_length"] and ours.padding == bool(ref["file.padding"])
    recons = inference.decompress(model, ours)
    err = float(np.abs(recons - ref["audio"]).max())
    assert err <= AUDIO_ATOL, err

    # A file the original wrote decodes in jaxdac to the original's audio.
    theirs = read_dac_file(tmp_path / "original.dac")
    err_from_original_file = float(np.abs(inference.decompress(model, theirs) - ref["audio"]).max())
    assert err_from_original_file <= AUDIO_ATOL

    # A file jaxdac wrote decodes in the original to jaxdac's audio.
    write_dac_file(ours, tmp_path / "ours.dac")
    run_reference(HERE / "reference_inference_run.py", "decompress", case, tmp_path / "ours.dac", tmp_path / "theirs.npy")
    err_in_original = float(np.abs(np.load(tmp_path / "theirs.npy") - recons).max())
    assert err_in_original <= AUDIO_ATOL
    print(f"\n{name}: codes {ours.codes.shape} identical; worst audio error {err:.2e}; "
          f"original's file in jaxdac {err_from_original_file:.2e}; jaxdac's file in the original {err_in_original:.2e}")
