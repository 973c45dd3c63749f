"""Streaming with per-layer state equals whole-signal coding, releases each result as soon as it is final,
with the stated latency, and works as a pure function (jit, scan, a batch of independent streams)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import signals
from jaxdac import geometry
from jaxdac.streaming import DecoderStream, EncoderStream, StreamingDecoder, StreamingEncoder
from model_parity import seeded_geometry_models

CASES = ["tiny", "tiny_16khz", "tiny_24khz", "tiny_44khz_16kbps"]


@pytest.fixture(scope="module")
def models():
    return seeded_geometry_models()


def _audio(model, seconds: float) -> np.ndarray:
    sr = model.sample_rate
    audio = np.stack([signals.speech_like(sr, seconds, 1), signals.music_like(sr, seconds, 2)])[:, None]
    return audio[..., : audio.shape[-1] - 77].astype(np.float32)  # not a whole number of frames


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("window", [1, 3])
def test_stream_equals_whole_signal_coding_for_pieces_of_any_size(models, case, window):
    model = models[case]
    hop, lag = model.hop_length, geometry.stream_lag(geometry.encoder_convs(model.config))
    audio = _audio(model, 2.0)
    whole = np.asarray(model.encode(audio).codes)

    encoder = StreamingEncoder(model, window_frames=window)
    rng = np.random.default_rng(window)
    out, at = [], 0
    while at < audio.shape[-1]:
        n = int(rng.integers(1, 3 * hop))  # from a single sample up
        out.append(encoder.push(audio[..., at : at + n]))
        at = min(at + n, audio.shape[-1])
        # Every frame whose inputs have all arrived has come out: the stack is `lag` frames behind.
        assert sum(o.shape[-1] for o in out) == max(0, at // (window * hop) * window - lag), at
    out.append(encoder.flush())
    np.testing.assert_array_equal(np.concatenate(out, axis=-1), whole)

    decoder = StreamingDecoder(model, window_frames=window)
    decoded = np.asarray(model.decode(model.quantizer.from_codes(whole).z))
    dlag = geometry.stream_lag(geometry.decoder_convs(model.config))
    out, at = [], 0
    while at < whole.shape[-1]:
        n = int(rng.integers(1, 5))
        out.append(decoder.push(whole[..., at : at + n]))
        at = min(at + n, whole.shape[-1])
        assert sum(o.shape[-1] for o in out) == max(0, at // window * window * hop - dlag), at
    out.append(decoder.flush())
    streamed = np.concatenate(out, axis=-1)
    assert streamed.shape == decoded.shape
    np.testing.assert_allclose(streamed, decoded, atol=1e-5, rtol=0)


@pytest.mark.parametrize("window", [1, 4])
def test_out_major_layers_stream_the_same(models, monkeypatch, window):
    """The full-size models' wide layers run as out-major matmuls (streaming._OUT_MAJOR_CHANNELS); the
    tiny models have none, so here every layer is made one."""
    import jaxdac.streaming

    monkeypatch.setattr(jaxdac.streaming, "_OUT_MAJOR_CHANNELS", 1)
    model = models["tiny_24khz"]
    audio = _audio(model, 1.0)
    encoder = StreamingEncoder(model, window_frames=window)
    codes = np.concatenate([encoder.push(audio), encoder.flush()], axis=-1)
    np.testing.assert_array_equal(codes, np.asarray(model.encode(audio).codes))
    decoder = StreamingDecoder(model, window_frames=window)
    streamed = np.concatenate([decoder.push(codes), decoder.flush()], axis=-1)
    whole = np.asarray(model.decode(model.quantizer.from_codes(codes).z))
    np.testing.assert_allclose(streamed, whole, atol=1e-5, rtol=0)


def test_latency_is_the_right_context_and_lower_than_windowed_streaming(models):
    # Encoder: the right context (8 frames for every released model) plus the piece; decoder: its stack's
    # lag rounded up to frames plus the piece less one. Seamless windowed streaming needed W + 8 and W + 11.
    for case, hop, decoder_lag in (("tiny", 512, 4757), ("tiny_16khz", 320, 3141)):
        model = models[case]
        assert geometry.stream_lag(geometry.encoder_convs(model.config)) == geometry.encoder_context(model.config).right == 8
        assert geometry.stream_lag(geometry.decoder_convs(model.config)) == decoder_lag
        for window in (1, 2, 8):
            assert StreamingEncoder(model, window).latency_samples == (window + 8) * hop
            latency = StreamingDecoder(model, window).latency_frames
            assert latency == -(-decoder_lag // hop) + window - 1 <= window + 11 - 1
    assert StreamingEncoder(models["tiny"], 1).latency_samples == 4608  # 104 ms at 44.1 kHz
    assert StreamingDecoder(models["tiny"], 1).latency_frames == 10


def test_the_step_is_a_pure_function_to_jit_scan_and_batch(models):
    model = models["tiny"]
    hop = model.hop_length
    stream = EncoderStream.of(model, window_frames=2)
    audio = _audio(model, 1.0)[..., : 20 * 2 * hop]  # 20 pieces of two frames
    pieces = audio.reshape(2, 1, 20, 2 * hop).transpose(2, 0, 1, 3)  # [20, B, 1, 2 hop]

    state = stream.init(2)
    stepped = []
    for piece in pieces:
        state, block = stream.step(state, piece)
        stepped.append(block.codes)
    final, blocks = jax.jit(lambda s, st, ps: jax.lax.scan(s.step, st, ps))(stream, stream.init(2), pieces)
    np.testing.assert_array_equal(np.asarray(blocks.codes), np.stack(stepped))
    np.testing.assert_array_equal(np.asarray(blocks.first[:, 0]), np.arange(20) * 2 - 8)
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)

    # Independent streams in one batch: the second row starts 5 pieces after the first.
    one, two = stream.init(1), stream.init(1)
    together = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), one, two)
    alone = [[], []]
    for k in range(12):
        rows = [pieces[k, 0], pieces[k - 5, 1] if k >= 5 else np.zeros_like(pieces[0, 1])]
        if k >= 5:
            two, b = stream.step(two, rows[1][None])
            alone[1].append(np.asarray(b.codes[0]))
        one, a = stream.step(one, rows[0][None])
        alone[0].append(np.asarray(a.codes[0]))
        if k == 5:  # the second stream begins: its row restarts from a fresh state
            fresh = stream.init(1)
            together = jax.tree.map(lambda t, f: t.at[1:].set(f), together, fresh)
        together, both = stream.step(together, np.stack(rows))
        if k >= 5:
            np.testing.assert_array_equal(np.asarray(both.codes[1]), alone[1][-1])
        np.testing.assert_array_equal(np.asarray(both.codes[0]), alone[0][-1])


def test_one_compilation_per_piece_shape(models):
    model = models["tiny_16khz"]
    stream = DecoderStream.of(model, window_frames=3)
    state = stream.init(5)  # a batch no other test uses: its program is new to jit's cache
    codes = np.random.default_rng(0).integers(0, 64, (6, 5, model.n_codebooks, 3))
    before = DecoderStream.step._cache_size()
    for piece in codes:
        state, _ = stream.step(state, piece)
    assert DecoderStream.step._cache_size() == before + 1


def test_stream_misuse_is_an_error(models):
    model = models["tiny"]
    encoder = StreamingEncoder(model)
    with pytest.raises(ValueError, match="no audio"):
        encoder.flush()
    encoder.push(np.zeros((1, 1, 100), np.float32))
    with pytest.raises(ValueError, match="does not continue"):
        encoder.push(np.zeros((2, 1, 100), np.float32))
    encoder.flush()
    with pytest.raises(RuntimeError, match="flushed"):
        encoder.push(np.zeros((1, 1, 100), np.float32))
    with pytest.raises(ValueError, match="window_frames must be at least 1"):
        StreamingDecoder(model, window_frames=0)
    with pytest.raises(ValueError, match=r"pieces are \[batch, 1, 512\] audio"):
        EncoderStream.of(model).step(EncoderStream.of(model).init(1), np.zeros((1, 1, 100), np.float32))
    with pytest.raises(ValueError, match="n_quantizers must be in 1..4"):
        StreamingEncoder(model, n_quantizers=5)
