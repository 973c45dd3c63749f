"""Live parity of tokenizing a folder: ``jaxdac encode DIR`` (every clip through one packed program) gives
the codes and metadata of the original's ``python -m dac encode DIR`` coding each file whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import signals
from jaxdac.cli import main
from jaxdac.io.dacfile import read_dac_file

REFERENCE = Path(__file__).resolve().parent / "reference_tokenize.py"
# Mono and stereo, four input rates, 50 ms to 3.2 s: with --win-duration 0.5 the longer clips are cut
# into pieces across rows, the shorter ones share rows.
CLIPS = [("a.wav", 44100, 1, 1.3), ("b.flac", 48000, 2, 0.8), ("sub/c.wav", 16000, 1, 2.1),
         ("sub/d.wav", 22050, 2, 0.05), ("e.flac", 44100, 2, 3.2)]


@pytest.mark.parametrize("case", ["tiny", "tiny_16khz"])
def test_tokenized_folder_equals_the_originals_whole_file_encode(case, run_reference, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXDAC_COMPILATION_CACHE", "off")
    corpus = tmp_path / "in"
    (corpus / "sub").mkdir(parents=True)
    for i, (name, sr, channels, seconds) in enumerate(CLIPS):
        make = (signals.speech_like, signals.music_like)
        sf.write(corpus / name, np.stack([make[c](sr, seconds, seed=i) for c in range(channels)], axis=1), sr)
    weights = tmp_path / "weights.pth"
    run_reference(REFERENCE, "checkpoint", case, weights)
    # The original codes a file whole when it is no longer than its window.
    run_reference(REFERENCE, "encode", corpus, "--output", tmp_path / "original", "--weights_path", weights,
                  "--device", "cpu", "--win_duration", "100")
    assert main(["encode", str(corpus), "-o", str(tmp_path / "ours"), "--weights", str(weights), "--win-duration",
                 "0.5"]) == 0
    for name, *_ in CLIPS:
        theirs = read_dac_file(tmp_path / "original" / Path(name).with_suffix(".dac"))
        ours = read_dac_file(tmp_path / "ours" / Path(name).with_suffix(".dac"))
        np.testing.assert_array_equal(ours.codes, theirs.codes, err_msg=name)
        for field in ("chunk_length", "original_length", "channels", "sample_rate", "padding", "dac_version"):
            assert getattr(ours, field) == getattr(theirs, field), (name, field)
        np.testing.assert_allclose(ours.input_db, theirs.input_db, atol=1e-4, err_msg=name)
        print(f"{case} {name}: {ours.codes.shape} codes identical, input_db {ours.input_db} vs {theirs.input_db}")
