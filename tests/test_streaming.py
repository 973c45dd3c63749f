"""Streaming equals seamless batch processing, with the stated latency."""

import numpy as np
import pytest

import signals
from jaxdac import inference
from jaxdac.streaming import StreamingDecoder, StreamingEncoder
from model_parity import seeded_model


@pytest.fixture(scope="module")
def models():
    return {case: seeded_model(case) for case in ("tiny", "tiny_16khz")}


@pytest.mark.parametrize("case, sr", [("tiny", 44100), ("tiny_16khz", 16000)])
@pytest.mark.parametrize("window", [1, 7])
def test_stream_equals_seamless_batch(models, case, sr, window):
    model = models[case]
    hop = model.hop_length
    audio = np.stack([signals.speech_like(sr, 4.0, 1), signals.music_like(sr, 4.0, 2)])[:, None]
    audio = audio[..., : audio.shape[-1] - 77]  # not a whole number of frames
    batch_codes = inference._encode_seamless(model, audio, window * hop / sr)
    whole = np.asarray(model.encode(audio).codes)
    np.testing.assert_array_equal(batch_codes, whole)

    encoder = StreamingEncoder(model, window_frames=window)
    rng = np.random.default_rng(window)
    pieces, pushed, at = [], 0, 0
    while at < audio.shape[-1]:
        n = int(rng.integers(1, 3 * hop))
        out = encoder.push(audio[..., at : at + n])
        at = min(at + n, audio.shape[-1])
        pieces.append(out)
        emitted = sum(p.shape[-1] for p in pieces)
        # Every frame whose window and right context have arrived has been emitted.
        complete_windows = max(0, (at // hop - encoder.context.right) // window)
        assert emitted == complete_windows * window, (at, emitted)
    pieces.append(encoder.flush())
    np.testing.assert_array_equal(np.concatenate(pieces, axis=-1), whole)

    decoder = StreamingDecoder(model, window_frames=window)
    expected = inference._decode_seamless(model, whole, window * hop / sr)
    out, at = [], 0
    while at < whole.shape[-1]:
        n = int(rng.integers(1, 5))
        out.append(decoder.push(whole[..., at : at + n]))
        at = min(at + n, whole.shape[-1])
        produced = sum(o.shape[-1] for o in out)
        assert produced == max(0, (at - decoder.context.right) // window) * window * hop
    out.append(decoder.flush())
    streamed = np.concatenate(out, axis=-1)[:, 0]
    np.testing.assert_array_equal(streamed, expected)
    np.testing.assert_allclose(streamed, np.asarray(model.decode(model.quantizer.from_codes(whole).z))[:, 0], atol=1e-4)


def test_stream_misuse_is_an_error(models):
    encoder = StreamingEncoder(models["tiny"])
    with pytest.raises(ValueError, match="no audio"):
        encoder.flush()
    encoder.push(np.zeros((1, 1, 100), np.float32))
    with pytest.raises(ValueError, match="does not continue"):
        encoder.push(np.zeros((2, 1, 100), np.float32))
    encoder.flush()
    with pytest.raises(RuntimeError, match="flushed"):
        encoder.push(np.zeros((1, 1, 100), np.float32))
