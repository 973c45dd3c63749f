"""Seamless chunking: window-by-window results equal whole-file processing; the receptive field the
geometry computes is the one the modules have."""

import jax.numpy as jnp
import numpy as np
import pytest

import inference_cases
import signals
from jaxdac import geometry, inference
from model_parity import seeded_model


@pytest.fixture(scope="module")
def models():
    return {case: seeded_model(case) for case in ("tiny", "tiny_16khz")}


def test_seamless_codes_equal_the_originals_whole_file_codes(models):
    # short_w5 is coded whole (unpadded path not taken) by the original: the fixture holds its codes.
    reference = np.load(inference_cases.FIXTURE)["short_w5.codes"].astype(np.int64)
    audio, sr = inference_cases.case_audio("short_w5")
    for win in (0.02, 0.1, 0.37, 1.0):  # 1 frame (less than the receptive field) up to half the file
        dac_file = inference.compress(models["tiny"], audio, sr, win_duration=win, chunking="seamless")
        assert dac_file.padding and dac_file.chunk_length == dac_file.frames
        np.testing.assert_array_equal(dac_file.codes, reference, err_msg=f"window {win} s")


@pytest.mark.parametrize("case, sr", [("tiny", 44100), ("tiny_16khz", 16000)])
@pytest.mark.parametrize("kind", ["speech", "music"])
def test_seamless_equals_whole_file_for_any_window(models, case, sr, kind):
    model = models[case]
    make = signals.speech_like if kind == "speech" else signals.music_like
    audio = make(sr, 23.0, seed=3)[None, None]
    whole = inference.compress(model, audio, sr, win_duration=None)
    whole_audio = inference.decompress(model, whole, win_duration=None)
    frames_total = whole.frames
    mismatched, compared = 0, 0
    for win in (0.05, 0.5, 1.0, 5.0, 20.0):
        seamless = inference.compress(model, audio, sr, win_duration=win)
        assert seamless.codes.shape == whole.codes.shape == (1, model.n_codebooks, frames_total)
        mismatched += int(np.sum(seamless.codes != whole.codes))
        compared += whole.codes.size
        decoded = inference.decompress(model, whole, win_duration=win)
        assert np.abs(decoded - whole_audio).max() <= 1e-4, win
    print(f"\n{case} {kind}: {mismatched} of {compared} codes differ from whole-file coding")
    assert mismatched == 0


def _changed(a, b, axis_len):
    diff = np.abs(np.asarray(a) - np.asarray(b)).reshape(axis_len, -1).max(axis=1)
    idx = np.nonzero(diff > 0)[0]
    return idx.min(), idx.max()


@pytest.mark.parametrize("case", ["tiny", "tiny_16khz"])
def test_perturbation_changes_exactly_the_predicted_frames(models, case):
    model = models[case]
    config, hop = model.config, model.hop_length
    rng = np.random.default_rng(0)
    frames = 60
    x = rng.uniform(-0.5, 0.5, (1, frames * hop, 1)).astype(np.float32)
    base = model.encode_latent(jnp.asarray(x))[0]  # [F, D]
    dep = geometry.dependency(geometry.encoder_convs(config))
    for p in (30 * hop + 7, 30 * hop + hop // 2, 31 * hop - 1):
        y = x.copy()
        y[0, p, 0] += 0.5
        lo, hi = _changed(model.encode_latent(jnp.asarray(y))[0], base, frames)
        # Frame f reads samples [f hop + dep.lo, f hop + dep.hi]: it sees p iff f lies in this range.
        predicted = (int(np.ceil((p - dep.hi) / hop)), int(np.floor((p - dep.lo) / hop)))
        assert (lo, hi) == predicted, (p, (lo, hi), predicted)

    z = rng.standard_normal((1, frames, config.latent_dim)).astype(np.float32)
    base = model.decode_latent(jnp.asarray(z))[0, :, 0]
    dep = geometry.dependency(geometry.decoder_convs(config))
    for f in (25, 30):
        w = z.copy()
        w[0, f] += 1.0
        out = model.decode_latent(jnp.asarray(w))[0, :, 0]
        idx = np.nonzero(np.abs(np.asarray(out - base)) > 0)[0]
        # Sample t reads frames [t/hop + dep.lo, t/hop + dep.hi], so only t in this range can change.
        # The transposed convolutions' bounds are relaxed to rationals, so the range may over-reach,
        # but by less than one frame on each side (so the context in frames is still tight).
        predicted = (int(np.ceil((f - dep.hi) * hop)), int(np.floor((f - dep.lo) * hop)))
        assert predicted[0] <= idx.min() and idx.max() <= predicted[1], (f, (idx.min(), idx.max()), predicted)
        assert idx.min() - predicted[0] < hop and predicted[1] - idx.max() < hop
