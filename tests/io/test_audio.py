"""Audio files: round trips per format, atomic writes that keep existing files, one clear error per problem."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from jaxdac.io import audio as audio_module
from jaxdac.io.audio import (
    AudioFileError,
    audio_info,
    audio_suffixes,
    check_encoding,
    read_audio,
    resolve_format,
    suffix_for_format,
    write_audio,
)

HAS_MP3 = "MP3" in sf.available_formats()


def tone(channels=2, seconds=0.5, sample_rate=44100) -> np.ndarray:  # [C, T]
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return np.stack([0.3 * np.sin(2 * np.pi * 440 * (c + 1) * t) for c in range(channels)]).astype(np.float32)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(
    "name, subtype, atol",
    [
        ("x.wav", "FLOAT", 0.0),
        ("x.wav", None, 2.0**-15),  # PCM_16, the default
        ("x.flac", "PCM_24", 2.0**-23),
        ("x.ogg", None, 0.05),  # lossy
        pytest.param("x.mp3", None, 0.1, marks=pytest.mark.skipif(not HAS_MP3, reason="libsndfile without MP3")),
    ],
)
def test_round_trip(tmp_path, name, subtype, atol):
    x = tone()
    path = write_audio(tmp_path / name, x, 44100, subtype=subtype)
    y, sr = read_audio(path)
    assert sr == 44100 and y.dtype == np.float32 and y.shape[0] == 2
    if name.endswith(".mp3"):  # MP3 adds encoder delay and padding; check level, not samples
        assert abs(y.shape[1] - x.shape[1]) < 3000 and abs(np.abs(y).max() - 0.3) < 0.05
    else:
        assert y.shape == x.shape
        np.testing.assert_allclose(y, x, atol=atol)
    info = audio_info(path)
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert leftovers(tmp_path) == []


def test_mono_vectors_and_format_override(tmp_path):
    x = tone(1)[0]
    path = write_audio(tmp_path / "x.bin", x, 16000, format="flac")
    assert sf.info(str(path)).format == "FLAC"
    y, sr = read_audio(path)
    assert y.shape == (1, x.size) and sr == 16000


def test_integer_subtypes_clip(tmp_path):
    x = np.array([[0.5, 1.5, -3.0]], np.float32)
    y, _ = read_audio(write_audio(tmp_path / "x.wav", x, 8000))
    np.testing.assert_allclose(y[0], [0.5, 1.0, -1.0], atol=2.0**-15)


def test_existing_file_is_kept_unless_overwrite(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists"):
        write_audio(path, tone(), 44100)
    assert path.read_bytes() == b"precious"
    write_audio(path, tone(), 44100, overwrite=True)
    assert read_audio(path)[0].shape == tone().shape
    assert leftovers(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken(self, data):
        raise sf.LibsndfileError(0, "disk on fire")

    monkeypatch.setattr(sf.SoundFile, "write", broken)
    with pytest.raises(AudioFileError, match="cannot write .*x.wav"):
        write_audio(tmp_path / "x.wav", tone(), 44100)
    assert list(tmp_path.iterdir()) == []


def test_long_audio_is_written_in_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(audio_module, "_BLOCK", 1000)
    x = tone(2, seconds=0.2)
    y, _ = read_audio(write_audio(tmp_path / "x.wav", x, 44100, subtype="FLOAT"))
    np.testing.assert_array_equal(y, x)


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(AudioFileError, match="missing.wav: no such file"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioFileError, match="is a directory"):
        read_audio(tmp_path)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + b"\x00" * 40)
    with pytest.raises(AudioFileError, match=r"cannot read .*bad.wav as audio"):
        read_audio(bad)
    with pytest.raises(AudioFileError, match=r"cannot read .*bad.wav"):
        audio_info(bad)
    sf.write(tmp_path / "empty.wav", np.zeros((0, 2), np.float32), 44100)
    for f in (read_audio, audio_info):
        with pytest.raises(AudioFileError, match=r"empty.wav holds no audio \(0 samples\)"):
            f(tmp_path / "empty.wav")
    # A WAV cut inside its header.
    whole = write_audio(tmp_path / "whole.wav", tone(), 44100).read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:30])
    with pytest.raises(AudioFileError, match=r"cut.wav"):
        read_audio(tmp_path / "cut.wav")
    assert issubclass(AudioFileError, ValueError)


def test_unsupported_formats_are_clear(tmp_path):
    with pytest.raises(AudioFileError, match="format XYZ .* is not supported .* choose one of"):
        write_audio(tmp_path / "x.xyz", tone(), 44100)
    with pytest.raises(AudioFileError, match="cannot tell the audio format"):
        write_audio(tmp_path / "noext", tone(), 44100)
    with pytest.raises(AudioFileError, match="WAV files cannot hold VORBIS samples"):
        write_audio(tmp_path / "x.wav", tone(), 44100, subtype="vorbis")
    with pytest.raises(AudioFileError, match="must be \\[channels, samples\\]"):
        write_audio(tmp_path / "x.wav", np.zeros((1, 2, 3), np.float32), 44100)
    with pytest.raises(AudioFileError, match="sample rate"):
        write_audio(tmp_path / "x.wav", tone(), 0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not HAS_MP3, reason="libsndfile without MP3")
def test_mp3_limits_fail_before_writing(tmp_path):
    with pytest.raises(AudioFileError, match="sample rates"):
        check_encoding("MP3", "MPEG_LAYER_III", 96000, 2, name="x.mp3")
    with pytest.raises(AudioFileError, match="cannot store 3 channel"):
        write_audio(tmp_path / "x.mp3", tone(3), 44100)
    assert list(tmp_path.iterdir()) == []
    check_encoding("MP3", "MPEG_LAYER_III", 48000, 2)


def test_without_mp3_support_the_error_says_so(tmp_path, monkeypatch):
    # Older libsndfile builds have no MP3: the error names the format and what is available.
    formats = {k: v for k, v in sf.available_formats().items() if k != "MP3"}
    monkeypatch.setattr(sf, "available_formats", lambda: formats)
    assert ".mp3" not in audio_suffixes()
    with pytest.raises(AudioFileError, match="audio format MP3 for .*x.mp3 is not supported by this libsndfile"):
        write_audio(tmp_path / "x.mp3", tone(), 44100)


def test_format_helpers():
    assert resolve_format("a.WAV") == ("WAV", "PCM_16")
    assert resolve_format("a.flac") == ("FLAC", "PCM_16")
    assert resolve_format("a.ogg") == ("OGG", "VORBIS")
    assert resolve_format(format="wav", subtype="float") == ("WAV", "FLOAT")
    assert suffix_for_format("FLAC") == ".flac" and suffix_for_format("wavex") == ".wav"
    assert {".wav", ".flac", ".ogg"} <= audio_suffixes()
