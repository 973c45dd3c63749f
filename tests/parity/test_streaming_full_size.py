"""Streaming with the full-size 44.1 kHz model equals its whole-signal coding: the same codes, audio within
1e-5, for pieces of random size from one sample up. Needs no reference environment (whole-signal coding is
proven against the original by test_model_parity); it is here, not in the main suite, for its size."""

import numpy as np

import signals
from jaxdac.streaming import StreamingDecoder, StreamingEncoder
from model_parity import seeded_model


def test_full_size_stream_equals_whole_signal_coding():
    model = seeded_model("dac_44khz")
    sr, hop = model.sample_rate, model.hop_length
    audio = np.stack([signals.speech_like(sr, 1.0, 1), signals.music_like(sr, 1.0, 2)])[:, None, :-301]
    audio = audio.astype(np.float32)
    whole = np.asarray(model.encode(audio).codes)

    rng = np.random.default_rng(0)
    encoder, out, at = StreamingEncoder(model, window_frames=1), [], 0
    while at < audio.shape[-1]:
        n = int(rng.integers(1, 3 * hop))
        out.append(encoder.push(audio[..., at : at + n]))
        at += n
    out.append(encoder.flush())
    np.testing.assert_array_equal(np.concatenate(out, axis=-1), whole)

    decoder, out, at = StreamingDecoder(model, window_frames=1), [], 0
    while at < whole.shape[-1]:
        n = int(rng.integers(1, 4))
        out.append(decoder.push(whole[..., at : at + n]))
        at += n
    out.append(decoder.flush())
    decoded = np.asarray(model.decode(model.quantizer.from_codes(whole).z))
    streamed = np.concatenate(out, axis=-1)
    assert streamed.shape == decoded.shape
    np.testing.assert_allclose(streamed, decoded, atol=1e-5, rtol=0)
