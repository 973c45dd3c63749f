"""compress_file / decompress_file: files of any length in memory set by the window, with exactly the
results of compress / decompress on the same samples."""

import tracemalloc

import numpy as np
import pytest

import signals
from jaxdac import dsp, inference
from jaxdac.io.audio import AudioFileError, read_audio, write_audio
from jaxdac.io.dacfile import DACFile
from model_parity import seeded_model


@pytest.fixture(scope="module")
def models():
    return {case: seeded_model(case) for case in ("tiny", "tiny_16khz")}


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 3001 samples (not a multiple of anything the model or the DSP uses): many blocks and
    every kind of border even in a few seconds of audio."""
    monkeypatch.setattr(inference, "_BLOCK", 3001)


def _stereo(sr, seconds, seed=0):
    audio = np.stack([signals.speech_like(sr, seconds, seed), 0.5 * signals.music_like(sr, seconds, seed + 1)])
    return audio[:, : audio.shape[-1] - 123].astype(np.float32)  # not a whole number of frames


def test_prepare_in_blocks_equals_whole_signal_dsp(small_blocks, models):
    """The streamed first and second pass give the model input a whole-signal pass gives."""
    model = models["tiny"]
    audio = _stereo(48000, 3.0)[None]
    x, input_db = inference.prepare(model, audio, 48000, normalize_db=-3.0)  # loud: the limiter acts

    whole = np.asarray(dsp.resample(audio, 48000, model.sample_rate))
    db = np.asarray(dsp.loudness(whole, model.sample_rate))
    np.testing.assert_allclose(input_db, db, atol=1e-5)
    expected = whole * np.exp(np.float32(-3.0 - db) * np.float32(inference.GAIN_FACTOR))[:, None, None]
    expected = expected / np.maximum(np.abs(expected).max(-1, keepdims=True), 1.0)
    assert x.shape == (2, 1, whole.shape[-1])
    np.testing.assert_allclose(x[:, 0], expected[0], atol=1e-6)
    assert np.abs(x).max() == pytest.approx(1.0, abs=1e-6)  # the limiter acted


@pytest.mark.parametrize("chunking, win", [("seamless", 0.5), ("seamless", None), ("legacy", 0.61), ("legacy", None)])
def test_compress_file_equals_compress(tmp_path, small_blocks, models, chunking, win):
    model = models["tiny"]
    audio = _stereo(48000, 2.5)
    path = write_audio(tmp_path / "in.wav", audio, 48000, subtype="FLOAT")
    from_file = inference.compress_file(model, path, win_duration=win, chunking=chunking)
    in_memory = inference.compress(model, read_audio(path)[0], 48000, win_duration=win, chunking=chunking)
    np.testing.assert_array_equal(from_file.codes, in_memory.codes)
    np.testing.assert_array_equal(from_file.input_db, in_memory.input_db)
    assert (from_file.chunk_length, from_file.padding, from_file.original_length) == (
        in_memory.chunk_length, in_memory.padding, audio.shape[-1])
    if chunking == "seamless":
        # Blocks of any size give the codes of one whole-signal encode of the prepared input.
        x, _ = inference.prepare(model, audio, 48000)
        np.testing.assert_array_equal(from_file.codes, np.asarray(model.encode(x).codes))


@pytest.mark.parametrize("case, sr, win", [("tiny", 48000, 0.3), ("tiny_16khz", 16000, 0.5), ("tiny", 44100, None)])
def test_decompress_file_equals_decompress(tmp_path, small_blocks, models, case, sr, win):
    model = models[case]
    audio = _stereo(sr, 2.0, seed=3)
    dac_file = inference.compress(model, audio, sr, win_duration=0.5)
    target = inference.decompress_file(model, dac_file, tmp_path / "out.wav", subtype="FLOAT", win_duration=win)
    written, rate = read_audio(target)
    assert rate == sr
    np.testing.assert_array_equal(written, inference.decompress(model, dac_file, win_duration=win)[0])
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no spool or temporary file left


def test_decompress_in_blocks_equals_whole_signal_dsp(small_blocks, models):
    """Measuring the decoded loudness while spooling and resampling in blocks equals the whole-signal
    computation (the original's decompress, given the decoder's output)."""
    model = models["tiny"]
    dac_file = inference.compress(model, _stereo(48000, 2.0, seed=5), 48000, win_duration=0.5)
    y = inference.decompress(model, dac_file, win_duration=None)
    decoded = np.asarray(model.decode(model.quantizer.from_codes(dac_file.codes).z))  # [2, 1, T]
    gain = np.exp((dac_file.input_db - np.asarray(dsp.loudness(decoded, model.sample_rate))) * inference.GAIN_FACTOR)
    expected = np.asarray(dsp.resample(decoded * gain[:, None, None].astype(np.float32), model.sample_rate, 48000))
    np.testing.assert_allclose(y[0], expected[:, 0, : dac_file.original_length], atol=1e-5)


def test_legacy_chunked_files_decode_in_blocks(tmp_path, models):
    model = models["tiny"]
    dac_file = inference.compress(model, _stereo(44100, 2.0), 44100, win_duration=0.61, chunking="legacy")
    assert not dac_file.padding and dac_file.frames > dac_file.chunk_length
    target = inference.decompress_file(model, dac_file, tmp_path / "out.wav", subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(target)[0], inference.decompress(model, dac_file)[0])


def _peak_numpy_bytes(fn) -> int:
    """Peak bytes numpy allocated during ``fn()`` (numpy reports its buffers to tracemalloc; arrays XLA
    allocates are not counted, and their size is set by the window)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_file_length(tmp_path, models):
    """Host memory of compress_file and decompress_file is set by the block and window sizes: a file 4x
    longer peaks within 1.25x (what grows is the codes, 1/100 of the audio's size)."""
    model = models["tiny"]
    peaks = {}
    for seconds in (15, 60):
        audio = np.tile(_stereo(48000, 5.0, seed=7), seconds // 5)
        path = write_audio(tmp_path / f"{seconds}.wav", audio, 48000)
        del audio
        holder = {}
        encode = _peak_numpy_bytes(lambda: holder.setdefault("f", inference.compress_file(model, path, win_duration=2.0)))
        out = tmp_path / f"{seconds}.out.wav"
        decode = _peak_numpy_bytes(lambda: inference.decompress_file(model, holder["f"], out, win_duration=2.0))
        peaks[seconds] = (encode, decode)
    print(f"\npeak numpy bytes (encode, decode): 15 s {peaks[15]}, 60 s {peaks[60]}")
    one_copy = 2 * 4 * 48000 * 60  # the 60 s file as float32
    assert max(peaks[60]) < 0.75 * one_copy, (peaks, one_copy)
    assert peaks[60][0] < 1.25 * peaks[15][0]
    assert peaks[60][1] < 1.25 * peaks[15][1]


def test_bad_input_is_one_clear_error_and_writes_nothing(tmp_path, models):
    model = models["tiny"]
    with pytest.raises(AudioFileError, match="no such file"):
        inference.compress_file(model, tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioFileError, match="cannot read"):
        inference.compress_file(model, tmp_path / "junk.wav")
    dac_file = inference.compress(model, _stereo(44100, 1.0), 44100)
    other_model = DACFile(codes=np.zeros((1, 9, 10), np.int32), chunk_length=10, original_length=5000,
                          input_db=np.zeros(1, np.float32), channels=1, sample_rate=44100, padding=True)
    with pytest.raises(ValueError, match="different model"):
        inference.decompress_file(model, other_model, tmp_path / "out.wav")
    too_long = DACFile(codes=dac_file.codes, chunk_length=dac_file.chunk_length, original_length=10**12,
                       input_db=dac_file.input_db, channels=2, sample_rate=44100, padding=True)
    with pytest.raises(ValueError, match="written by a different model: its 86 frames for 1000000000000 samples"):
        inference.decompress_file(model, too_long, tmp_path / "long.wav")
    existing = tmp_path / "exists.wav"
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        inference.decompress_file(model, dac_file, existing)
    assert existing.read_bytes() == b"keep me"
    batch = DACFile(codes=np.concatenate([dac_file.codes] * 2), chunk_length=dac_file.chunk_length,
                    original_length=dac_file.original_length, input_db=np.repeat(dac_file.input_db, 2),
                    channels=2, sample_rate=44100, padding=True)
    with pytest.raises(ValueError, match="one item"):
        inference.decompress_file(model, batch, tmp_path / "batch.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.wav", "junk.wav"]
    with pytest.raises(ValueError, match="dtype"):
        inference.compress(model, _stereo(44100, 1.0), 44100, dtype="float16")


def test_bfloat16_through_the_api(models):
    model = models["tiny"]
    audio = _stereo(44100, 2.0)
    ref = inference.compress(model, audio, 44100, win_duration=0.5)
    low = inference.compress(model, audio, 44100, win_duration=0.5, dtype="bfloat16")
    assert low.codes.shape == ref.codes.shape
    agreement = float((low.codes == ref.codes).mean())
    assert agreement > 0.5, agreement  # bfloat16 rounding flips some later codebooks, not the signal
    y = inference.decompress(model, ref, dtype="bfloat16")
    y32 = inference.decompress(model, ref)
    assert y.dtype == np.float32 and y.shape == y32.shape
    assert np.abs(y - y32).max() < 0.05 * np.abs(y32).max()
