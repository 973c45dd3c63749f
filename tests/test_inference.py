"""compress / decompress against the original's (golden fixtures from scripts/make_fixtures_inference.py)."""

import jax
import numpy as np
import pytest

import inference_cases
from jaxdac import geometry, inference
from jaxdac.config import PRESETS
from jaxdac.io.dacfile import DACFile
from model_parity import seeded_model

AUDIO_ATOL = 1e-3


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(inference_cases.FIXTURE))


@pytest.fixture(scope="module")
def models():
    return {case: seeded_model(case) for case in ("tiny", "tiny_16khz")}


@pytest.mark.parametrize("name", list(inference_cases.CASES))
def test_compress_decompress_match_original(name, reference, models):
    case, _, _, _, win = inference_cases.CASES[name]
    audio, sr = inference_cases.case_audio(name)
    dac_file = inference.compress(models[case], audio, sr, win_duration=win, chunking="legacy")
    # Keys look like "<name>.codes"; names themselves contain dots, so strip the known prefix.
    ref = {k[len(name) + 1 :]: v for k, v in reference.items() if k.startswith(name + ".")}
    np.testing.assert_array_equal(dac_file.codes, ref["codes"].astype(np.int64))
    assert dac_file.chunk_length == ref["chunk_length"]
    assert dac_file.original_length == ref["original_length"]
    assert dac_file.padding == bool(ref["padding"])
    np.testing.assert_allclose(dac_file.input_db, ref["input_db"], atol=1e-3)
    recons = inference.decompress(models[case], dac_file)
    assert recons.shape == audio.shape
    ours = recons[..., :: inference_cases.audio_stride(name)]
    err = float(np.abs(ours - ref["audio"]).max())
    print(f"\n{name}: {dac_file.codes.shape} codes identical; worst audio error {err:.2e}")
    assert err <= AUDIO_ATOL


@pytest.mark.parametrize("chunking, win", [("legacy", 0.61), ("seamless", 0.63)])
def test_chunk_batch_gives_the_same_results_and_one_trace_per_shape(models, chunking, win):
    model = models["tiny"]
    audio, sr = inference_cases.case_audio("stereo44_w1")
    jax.clear_caches()  # count traces from scratch, whatever ran before
    inference.TRACES.clear()
    one = inference.compress(model, audio, sr, win_duration=win, chunking=chunking)
    three = inference.compress(model, audio, sr, win_duration=win, chunking=chunking, chunk_batch=3)
    again = inference.compress(model, audio[..., :-4410], sr, win_duration=win, chunking=chunking, chunk_batch=3)
    np.testing.assert_array_equal(one.codes, three.codes)
    # One trace per (window, chunk_batch): a different file length reuses the compiled function.
    encode_traces = {k: v for k, v in inference.TRACES.items() if k[0] == "encode"}
    assert len(encode_traces) == 2 and set(encode_traces.values()) == {1}, encode_traces
    y1 = inference.decompress(model, one, win_duration=win)
    y3 = inference.decompress(model, three, win_duration=win, chunk_batch=3)
    inference.decompress(model, again, win_duration=win, chunk_batch=3)
    # Codes are integers and equal exactly; the decoded audio comes from batches of another shape, for
    # which XLA may pick other kernels: equal to float rounding (3.6e-7 seen), not bit for bit.
    np.testing.assert_allclose(y1, y3, atol=1e-5, rtol=0)
    decode_traces = {k: v for k, v in inference.TRACES.items() if k[0] == "decode"}
    assert len(decode_traces) == 2 and set(decode_traces.values()) == {1}, decode_traces


@pytest.mark.parametrize("case", ["tiny_16khz"])
def test_stride5_models_decode_exactly_original_length(case, models):
    # The original crashes here: its decoder comes out 8 samples short of the padded input.
    model = models[case]
    for n in (16000, 16000 + 7, 320 * 50):
        dac_file = inference.compress(model, np.zeros((1, 1, n), np.float32) + 0.01, 16000, win_duration=None)
        assert geometry.decoded_length(model.config, dac_file.frames) < geometry.padded_input_length(model.config, n)
        assert inference.decompress(model, dac_file).shape == (1, 1, n)


def test_window_shorter_than_the_model_context_is_refused(models):
    with pytest.raises(ValueError, match="win_duration"):
        inference.compress(models["tiny_16khz"], np.zeros((1, 1, 48000), np.float32), 16000, win_duration=0.5,
                           chunking="legacy")


def test_files_from_another_model_are_refused(models):
    bad = DACFile(codes=np.zeros((1, 9, 10), np.int32), chunk_length=10, original_length=5000,
                  input_db=np.zeros(1, np.float32), channels=1, sample_rate=44100, padding=True)
    with pytest.raises(ValueError, match="codebook"):
        inference.decompress(models["tiny"], bad)


@pytest.mark.parametrize("name", list(inference_cases.CASES))
def test_files_of_the_original_fit_their_model_and_not_the_other(name, reference):
    """The frame count the original wrote (chunked and unchunked, resampled or not) is the one
    ``validate_for`` derives from the geometry; the other tiny model (other rate and hop) is refused."""
    case, sr, channels, _, _ = inference_cases.CASES[name]
    ref = {k[len(name) + 1 :]: v for k, v in reference.items() if k.startswith(name + ".")}
    theirs = DACFile(codes=ref["codes"], chunk_length=int(ref["chunk_length"]),
                     original_length=int(ref["original_length"]), input_db=ref["input_db"], channels=channels,
                     sample_rate=sr, padding=bool(ref["padding"]))
    theirs.validate_for(PRESETS[case])
    other = "tiny_16khz" if case == "tiny" else "tiny"
    with pytest.raises(ValueError, match="written by a different model"):
        theirs.validate_for(PRESETS[other])
