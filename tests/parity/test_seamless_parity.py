"""Live: seamless compression gives the original's whole-file (unchunked) codes at any window."""

from pathlib import Path

import numpy as np
import pytest

import model_cases
import signals
from jaxdac import geometry, inference
from jaxdac.io.dacfile import read_dac_file
from model_parity import code_ties, seeded_model

# Two float32 implementations may choose differently where two codes are all but equidistant: deep in
# the residual stack the residual is small, so rounding of the latent (1e-6) moves its direction by
# ~1e-4. A difference is accepted only at such a tie, and only rarely.
TIE_GAP = 2e-3  # relative distance gap between the two candidates
MAX_TIE_RATE = 1e-3  # differing decisions per (frame, codebook)

HERE = Path(__file__).parent

# (model case, signal, seconds, windows in s; "rf" = the encoder's receptive field from the geometry)
CASES = {
    "tiny44_speech": ("tiny", "speech", 25.0, ("rf", 1.0, 5.0, 20.0)),
    "tiny16_music": ("tiny_16khz", "music", 25.0, ("rf", 1.0, 5.0, 20.0)),
    "full44_music": ("dac_44khz", "music", 12.0, ("rf", 1.0, 5.0)),
    "full24_speech": ("dac_24khz", "speech", 12.0, ("rf", 1.0, 5.0)),
    "full16_music": ("dac_16khz", "music", 12.0, ("rf", 1.0, 5.0)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_seamless_codes_equal_original_whole_file(name, run_reference, tmp_path):
    case, kind, seconds, windows = CASES[name]
    model = seeded_model(case)
    sr = model.sample_rate
    make = signals.speech_like if kind == "speech" else signals.music_like
    audio = make(sr, seconds, model_cases.seed_of(name))[None, None]
    np.save(tmp_path / "input.npy", audio)
    # A window longer than the file makes the original code it whole (its unchunked path).
    run_reference(HERE / "reference_inference_run.py", "compress", name, case, 10_000, tmp_path / "input.npy", sr, tmp_path)
    reference = np.load(tmp_path / "original.npz")
    dep = geometry.dependency(geometry.encoder_convs(model.config))
    receptive_field = float(dep.hi - dep.lo + 1) / sr
    theirs = reference["file.codes"].astype(np.int64)
    report = []
    x, _ = inference.prepare(model, audio, sr)
    for win in windows:
        seconds_per_window = receptive_field if win == "rf" else win
        ours = inference.compress(model, audio, sr, win_duration=seconds_per_window)
        assert ours.codes.shape == theirs.shape
        ties = code_ties(model, x, ours.codes, theirs) if np.any(ours.codes != theirs) else []
        report.append(f"{seconds_per_window:.3f} s: {len(ties)} of {theirs.size} decisions"
                      + (f" (ties, worst gap {max(t[3] for t in ties):.1e})" if ties else ""))
        assert all(t[3] < TIE_GAP for t in ties), ties
        assert len(ties) <= MAX_TIE_RATE * theirs.size, ties
    print(f"\n{name}: decisions differing from the original's whole-file compress, per window: " + "; ".join(report))
    if sr == 44100:
        # The original's unchunked file decodes (window by window here) to the original's audio.
        decoded = inference.decompress(model, read_dac_file(tmp_path / "original.dac"), win_duration=1.0)
        assert np.abs(decoded - reference["audio"]).max() <= 1e-3
