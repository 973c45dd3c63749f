"""Audio files in and out, through ``soundfile`` (libsndfile).

Public audio is ``[channels, samples]`` float32. Which formats work depends on the libsndfile that
``soundfile`` loads: WAV, FLAC, OGG/Vorbis and (libsndfile >= 1.1) MP3 in practice; ``formats()``
lists them. Every failure a user can cause (missing, unreadable, corrupt or empty file, a format or
sample type this libsndfile cannot handle) raises :class:`AudioFileError` naming the file.

Writing is atomic: samples go to a temporary file in the target's directory that is moved into place
when complete, so a reader never sees a half-written file and a failure leaves nothing behind. An
existing file is kept (``FileExistsError``) unless ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import soundfile as sf

from jaxdac.io.atomic import atomic_output

__all__ = [
    "AudioFileError",
    "AudioInfo",
    "AudioWriter",
    "audio_info",
    "audio_suffixes",
    "check_encoding",
    "formats",
    "read_audio",
    "read_audio_blocks",
    "resolve_format",
    "suffix_for_format",
    "write_audio",
]

# File suffix -> (libsndfile major format, default subtype or None for libsndfile's default).
_SUFFIXES: dict[str, tuple[str, str | None]] = {
    ".wav": ("WAV", None),
    ".flac": ("FLAC", None),
    ".ogg": ("OGG", None),
    ".oga": ("OGG", None),
    ".opus": ("OGG", "OPUS"),
    ".mp3": ("MP3", None),
    ".aif": ("AIFF", None),
    ".aiff": ("AIFF", None),
    ".aifc": ("AIFF", None),
    ".au": ("AU", None),
    ".caf": ("CAF", None),
    ".w64": ("W64", None),
    ".rf64": ("RF64", None),
}
# Format -> the suffix written for it (formats not listed use their lower-case name).
_FORMAT_SUFFIX = {"WAV": ".wav", "WAVEX": ".wav", "RF64": ".rf64", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3",
                  "AIFF": ".aiff", "AU": ".au", "CAF": ".caf", "W64": ".w64"}

_BLOCK = 1 << 20  # samples per channel written at a time: bounded extra memory for long files


class AudioFileError(ValueError):
    """An audio file is missing, unreadable, corrupt or empty, or its format is not supported."""


class AudioInfo(NamedTuple):
    sample_rate: int
    channels: int
    frames: int  # samples per channel (for MP3 an estimate from the header)
    format: str
    subtype: str


def formats() -> list[str]:
    """The major formats this libsndfile handles (``"WAV"``, ``"FLAC"``, ...)."""
    return sorted(sf.available_formats())


def audio_suffixes() -> frozenset[str]:
    """File suffixes (lower case, with the dot) of the audio formats this libsndfile handles."""
    available = sf.available_formats()
    return frozenset(s for s, (fmt, _) in _SUFFIXES.items() if fmt in available)


def suffix_for_format(format: str) -> str:
    """The file suffix written for a major format: ``"FLAC"`` -> ``".flac"``."""
    return _FORMAT_SUFFIX.get(format.upper(), "." + format.lower())


def _libsndfile() -> str:
    return f"libsndfile {sf.__libsndfile_version__}"


def _reason(e: Exception) -> str:
    # soundfile says "Error opening '<path>': <reason>" (or "<file object>: "); we name the path ourselves.
    text = re.sub(r"^Error opening (?:'.*?'|<.*?>): ", "", str(e).strip())
    text = re.sub(r"^Error\s*:\s*", "", text)
    return text.rstrip(".") or type(e).__name__


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise AudioFileError(f"{path}: no such file")
    if path.is_dir():
        raise AudioFileError(f"{path} is a directory, not an audio file")
    try:
        empty = path.is_file() and path.stat().st_size == 0
    except OSError:
        return  # opening it reports why
    if empty:  # libsndfile would say "Format not recognised"
        raise AudioFileError(f"{path} is an empty file (0 bytes)")


def _read_error(path: Path, e: Exception) -> AudioFileError:
    reason = _reason(e)
    if "not recognised" in reason.lower():
        reason += f" (this {_libsndfile()} reads {', '.join(formats())})"
    return AudioFileError(f"cannot read {path} as audio: {reason}")


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Sample rate, channels and length of an audio file, from its header (cheap; checks it opens)."""
    path = Path(path)
    _check_readable(path)
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError) as e:
        raise _read_error(path, e) from None
    if info.frames <= 0:
        raise AudioFileError(f"{path} holds no audio (0 samples)")
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames), info.format, info.subtype)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file: ``(audio float32 [channels, samples], sample_rate)``.

    The array is a transposed view of the interleaved samples (no second copy of a long file).
    """
    path = Path(path)
    _check_readable(path)
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)  # [T, C]
    except (sf.SoundFileError, RuntimeError, OSError) as e:
        raise _read_error(path, e) from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{path} holds no audio (0 samples)")
    return data.T, int(sample_rate)


def read_audio_blocks(path: str | os.PathLike, block: int = 1 << 18) -> Iterator[np.ndarray]:
    """Read an audio file in blocks: float32 ``[channels, <= block]`` arrays, in order, every sample once.

    Memory is one block, whatever the file's length. Raises :class:`AudioFileError` naming the file if
    it cannot be opened or read, or holds no samples (checked before the first block is yielded).
    """
    path = Path(path)
    _check_readable(path)
    try:
        f = sf.SoundFile(str(path))
    except (sf.SoundFileError, RuntimeError, OSError) as e:
        raise _read_error(path, e) from None
    with f:
        first = True
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)  # [b, C]
            except (sf.SoundFileError, RuntimeError, OSError) as e:
                raise _read_error(path, e) from None
            if data.shape[0] == 0:
                if first:
                    raise AudioFileError(f"{path} holds no audio (0 samples)")
                return
            first = False
            yield data.T


def resolve_format(
    path: str | os.PathLike | None = None, format: str | None = None, subtype: str | None = None
) -> tuple[str, str]:
    """The ``(format, subtype)`` to write: ``format`` or else the one ``path``'s suffix names, and
    ``subtype`` or else the format's default. Raises :class:`AudioFileError` if unsupported."""
    available = sf.available_formats()
    default_subtype = None
    if format is None:
        suffix = Path(path).suffix.lower() if path is not None else ""
        format, default_subtype = _SUFFIXES.get(suffix, (suffix[1:].upper(), None))
        if not format:
            raise AudioFileError(f"cannot tell the audio format of {path} from its name; give a format")
    format = format.upper()
    if format not in available:
        where = f" for {path}" if path is not None else ""
        raise AudioFileError(
            f"audio format {format}{where} is not supported by this {_libsndfile()}; "
            f"choose one of {', '.join(formats())}"
        )
    subtype = (subtype or default_subtype or sf.default_subtype(format) or "").upper()
    if not subtype or not sf.check_format(format, subtype):
        raise AudioFileError(
            f"{format} files cannot hold {subtype or 'these'} samples here; "
            f"choose one of {', '.join(sf.available_subtypes(format))}"
        )
    return format, subtype


def check_encoding(format: str, subtype: str, sample_rate: int, channels: int, *, name=None) -> None:
    """Raise :class:`AudioFileError` unless ``format``/``subtype`` can store audio of this rate and
    channel count (MP3, for one, takes only some rates and at most two channels). Writes nothing."""
    try:
        with sf.SoundFile(io.BytesIO(), "w", int(sample_rate), int(channels), subtype, format=format):
            pass
    except (sf.SoundFileError, RuntimeError) as e:
        raise AudioFileError(_encoding_error(name, format, subtype, sample_rate, channels, e)) from None


def _encoding_error(name, format, subtype, sample_rate, channels, e: Exception) -> str:
    reason = _reason(e)
    if "not recognised" in reason.lower():  # libsndfile's answer to a rate or layout it cannot store
        reason = f"{format} {subtype} cannot store {channels} channel(s) at {sample_rate} Hz"
    return f"cannot write {name}: {reason}" if name is not None else reason


class AudioWriter:
    """Write an audio file block by block, atomically: ``with AudioWriter(path, rate, channels) as w:
    w.write(block)`` with blocks ``[channels, samples]``. The file appears at ``path`` only when the
    ``with`` block ends without an error; until then (and after a failure) nothing is there.

    ``format`` / ``subtype`` as for :func:`write_audio`; an existing ``path`` is kept
    (``FileExistsError``) unless ``overwrite=True``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: int,
        channels: int,
        *,
        format: str | None = None,
        subtype: str | None = None,
        overwrite: bool = False,
    ):
        self.path = Path(path)
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1:
            raise AudioFileError(f"cannot write {self.path}: sample rate must be a positive integer, got {sample_rate!r}")
        self.format, self.subtype = resolve_format(self.path, format, subtype)
        self.sample_rate, self.channels, self.overwrite = int(sample_rate), int(channels), overwrite
        self.frames = 0
        self._stack: contextlib.ExitStack | None = None
        self._out: sf.SoundFile | None = None

    def _error(self, e: Exception) -> AudioFileError:
        return AudioFileError(_encoding_error(self.path, self.format, self.subtype, self.sample_rate, self.channels, e))

    def __enter__(self) -> "AudioWriter":
        with contextlib.ExitStack() as stack:
            f = stack.enter_context(atomic_output(self.path, overwrite=self.overwrite))
            try:
                self._out = stack.enter_context(
                    sf.SoundFile(f, "w", self.sample_rate, self.channels, self.subtype, format=self.format)
                )
            except (sf.SoundFileError, RuntimeError) as e:
                raise self._error(e) from None
            self._stack = stack.pop_all()
        return self

    def write(self, block) -> None:
        """Append ``block [channels, samples]`` (floating point; integer subtypes clip to [-1, 1])."""
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise AudioFileError(
                f"cannot write {self.path}: blocks must be [{self.channels}, samples], got shape {block.shape}"
            )
        if block.dtype.kind != "f":
            raise AudioFileError(f"cannot write {self.path}: audio must be floating point, got {block.dtype}")
        try:
            for start in range(0, block.shape[1], _BLOCK):
                self._out.write(np.ascontiguousarray(block[:, start : start + _BLOCK].T, dtype=np.float32))
        except (sf.SoundFileError, RuntimeError) as e:
            raise self._error(e) from None
        self.frames += block.shape[1]

    def __exit__(self, kind, value, traceback) -> bool:
        stack, self._stack = self._stack, None
        try:
            # Closing the SoundFile finishes the header; an error inside the block discards the file.
            return stack.__exit__(kind, value, traceback)
        except (sf.SoundFileError, RuntimeError) as e:
            raise self._error(e) from None


def write_audio(
    path: str | os.PathLike,
    audio,
    sample_rate: int,
    *,
    format: str | None = None,
    subtype: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``audio`` ``[channels, samples]`` (or ``[samples]``) to ``path``, atomically.

    ``format`` defaults to the one the suffix names (``.wav``, ``.flac``, ``.ogg``, ``.mp3``, ...) and
    ``subtype`` to libsndfile's default for it (``PCM_16`` for WAV and FLAC, as the original writes);
    integer subtypes clip samples to [-1, 1]. Pass ``subtype="FLOAT"`` to keep float samples in WAV.
    """
    path = Path(path)
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise AudioFileError(f"cannot write {path}: audio must be [channels, samples], got shape {audio.shape}")
    if audio.dtype.kind != "f":
        raise AudioFileError(f"cannot write {path}: audio must be floating point, got {audio.dtype}")
    with AudioWriter(path, sample_rate, audio.shape[0], format=format, subtype=subtype, overwrite=overwrite) as out:
        out.write(audio)
    return path
