"""DAC files (``.dac``): compressed codes plus what decompression needs, in the DAC 1.0.0 format.

On disk a DAC 1.0.0 file is what the original's ``DACFile.save`` writes with ``np.save``: an ``.npy``
file holding a 0-d object array whose single element is the dict ::

    {"codes": uint16 [B*C, n_codebooks, frames],
     "metadata": {"input_db": float32 [B], "original_length": int, "sample_rate": int,
                  "chunk_length": int, "channels": int, "padding": bool, "dac_version": "1.0.0"}}

An object array is stored as a pickle after the ``.npy`` header, so ``np.load(..., allow_pickle=True)``
would run whatever the pickle asks for. We parse the header ourselves and unpickle the payload with
:class:`~jaxdac.io.safe_pickle.RestrictedUnpickler`, which can rebuild numpy arrays, dtypes and scalars
and plain containers, and refuses everything else before it runs.

What a 1.0.0 file does *not* record: the model (its sample rate, hop length, codebook size). Its
``sample_rate`` is the rate of the original audio, which decompression resamples back to. What can be
checked against a model (:meth:`DACFile.validate_for`): the codebook count, the code range, and the
frame count, which the model's rate and hop fix given ``original_length`` and ``sample_rate``.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib import format as npy_format

from jaxdac.io.atomic import atomic_output
from jaxdac.io.safe_pickle import NUMPY_GLOBALS, PLAIN_GLOBALS, RestrictedUnpickler, UnsafePickleError

if TYPE_CHECKING:
    from jaxdac.config import DACConfig

__all__ = ["DACFile", "DACFileError", "SUPPORTED_VERSIONS", "expected_frames", "read_dac_file", "write_dac_file"]

SUPPORTED_VERSIONS = ("1.0.0",)
_METADATA_KEYS = ("input_db", "original_length", "sample_rate", "chunk_length", "channels", "padding", "dac_version")
_CODE_MAX = np.iinfo(np.uint16).max  # codes are stored as uint16
_NPY_MAGIC = b"\x93NUMPY"  # how every .npy file, so every DAC file, begins


class DACFileError(ValueError):
    """A DAC file (or the values meant for one) is truncated, corrupt or not DAC 1.0.0."""


@dataclasses.dataclass(frozen=True, eq=False)
class DACFile:
    """Codes and decompression metadata of a DAC 1.0.0 file.

    ``codes`` is int32 ``[B*C, n_codebooks, frames]``: each channel of each item is coded separately, rows
    ordered item-major (item 0 channel 0, item 0 channel 1, ...). ``input_db`` is float32 ``[B]`` (or
    ``[1]``), the loudness in LUFS of each item before normalisation, restored after decoding.
    ``sample_rate`` and ``original_length`` describe the input audio, not the model. ``chunk_length`` is
    the number of frames per independently decoded chunk; ``padding`` says whether the convolutions were
    padded when encoding (``True`` for unchunked files).
    """

    codes: np.ndarray  # [B*C, n_codebooks, frames] int32
    chunk_length: int
    original_length: int
    input_db: np.ndarray  # [B] float32
    channels: int
    sample_rate: int
    padding: bool
    dac_version: str = SUPPORTED_VERSIONS[-1]

    def __post_init__(self):
        problems: list[str] = []
        set_ = lambda name, value: object.__setattr__(self, name, value)

        for name, minimum in (("chunk_length", 1), ("original_length", 0), ("channels", 1), ("sample_rate", 1)):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                problems.append(f"{name} must be an integer, got {type(value).__name__}")
            elif value < minimum:
                problems.append(f"{name} must be >= {minimum}, got {value}")
            else:
                set_(name, int(value))
        if not isinstance(self.padding, (bool, np.bool_)):
            problems.append(f"padding must be a bool, got {type(self.padding).__name__}")
        else:
            set_("padding", bool(self.padding))
        if self.dac_version not in SUPPORTED_VERSIONS:
            problems.append(
                f"DAC version {self.dac_version!r} is not supported (supported: {', '.join(SUPPORTED_VERSIONS)})"
            )

        codes = np.asarray(self.codes)
        if codes.ndim != 3 or min(codes.shape) < 1:
            problems.append(f"codes must be a non-empty [B*C, n_codebooks, frames] array, got shape {codes.shape}")
        elif codes.dtype.kind not in "iu":
            problems.append(f"codes must be integers, got {codes.dtype}")
        elif codes.min() < 0 or codes.max() > _CODE_MAX:
            problems.append(f"codes must lie in [0, {_CODE_MAX}], got [{codes.min()}, {codes.max()}]")
        else:
            set_("codes", codes.astype(np.int32))
            if isinstance(self.channels, int) and self.channels >= 1 and codes.shape[0] % self.channels:
                problems.append(f"codes have {codes.shape[0]} rows, not a multiple of {self.channels} channels")

        input_db = np.asarray(self.input_db)
        if input_db.dtype.kind not in "fiu" or input_db.ndim > 1:
            problems.append(f"input_db must be a float vector, got {input_db.dtype} of shape {input_db.shape}")
        else:
            input_db = np.atleast_1d(input_db).astype(np.float32)
            set_("input_db", input_db)
            if not problems and input_db.size not in (1, self.batch_size):
                problems.append(f"input_db has {input_db.size} values for {self.batch_size} items")

        if problems:
            raise DACFileError("invalid DAC file contents: " + "; ".join(problems))

    @property
    def n_codebooks(self) -> int:
        return self.codes.shape[1]

    @property
    def frames(self) -> int:
        return self.codes.shape[2]

    @property
    def batch_size(self) -> int:
        """Number of items B (codes hold B*C rows)."""
        return self.codes.shape[0] // self.channels

    def validate_for(self, config: "DACConfig") -> None:
        """Raise ``ValueError`` if a model with ``config`` cannot decode these codes, or did not write them.

        A 1.0.0 file does not name its model, but it records enough to check one: the codebook count and
        the code range, and the frame count, which the model's sample rate and hop fix given the input's
        ``original_length`` and ``sample_rate`` (:func:`expected_frames`). A file written by a model of
        another rate or hop has the wrong number of frames for this one; the message names the released
        model whose geometry the file does fit, where there is one.
        """
        if self.n_codebooks > config.n_codebooks:
            raise ValueError(
                f"the DAC file has {self.n_codebooks} codebooks but the model has only {config.n_codebooks}; "
                "it was written by a different model"
            )
        top = int(self.codes.max())
        if top >= config.codebook_size:
            raise ValueError(
                f"the DAC file has code {top} but the model's codebooks have {config.codebook_size} entries; "
                "it was written by a different model"
            )
        expected = expected_frames(config, self.original_length, self.sample_rate, self.padding, self.chunk_length)
        if expected == self.frames:
            return
        if self.padding:
            what = f"{self.frames} frames for {self.original_length} samples at {self.sample_rate} Hz"
        else:
            what = (f"{self.frames} frames in chunks of {self.chunk_length} for {self.original_length} samples "
                    f"at {self.sample_rate} Hz")
        writers = [
            name for name, c in _released_geometries().items()
            if c.n_codebooks >= self.n_codebooks and c.codebook_size > top
            and expected_frames(c, self.original_length, self.sample_rate, self.padding, self.chunk_length) == self.frames
        ]
        fits = f"a {writers[0]}" if writers else "no released model"
        would = f"which makes {expected}" if expected is not None else (
            f"which has no window giving chunks of {self.chunk_length} frames")
        raise ValueError(
            f"written by a different model: its {what} fit {fits}, not this model "
            f"({config.sample_rate} Hz, hop {config.hop_length}), {would}"
        )

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write to ``path`` (exactly; no suffix is added). See :func:`write_dac_file`."""
        return write_dac_file(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DACFile":
        """Read ``path`` without running any pickled code. See :func:`read_dac_file`."""
        return read_dac_file(path)


def _released_geometries() -> dict[str, "DACConfig"]:
    # Descriptions of the released models, by geometry (the two 44.1 kHz releases share one; the larger
    # codebook count stands for both).
    from jaxdac.config import PRESETS

    return {
        "44khz model (44100 Hz, hop 512)": PRESETS["dac_44khz_16kbps"],
        "24khz model (24000 Hz, hop 320)": PRESETS["dac_24khz"],
        "16khz model (16000 Hz, hop 320)": PRESETS["dac_16khz"],
    }


def expected_frames(
    config: "DACConfig", original_length: int, sample_rate: int, padding: bool, chunk_length: int
) -> int | None:
    """Code frames a model with ``config`` writes for ``original_length`` samples at ``sample_rate``,
    as compress (ours and the original's) computes them; ``None`` if no window of this model gives
    chunks of ``chunk_length`` frames.

    The input is resampled to the model rate (``n`` samples). Unchunked (``padding``): padded
    convolutions on ``n`` samples rounded up to a multiple of the hop. Chunked: windows of ``w``
    samples (a multiple of the hop) give ``chunk_length`` frames each through unpadded convolutions,
    one every ``model_output_length(w)`` input samples over ``n``.
    """
    from jaxdac import geometry
    from jaxdac.dsp.resample import resampled_length

    n = resampled_length(original_length, sample_rate, config.sample_rate)
    if padding:
        return geometry.encoded_length(config, n)
    hop = config.hop_length
    # The unpadded encoder loses a fixed number of frames to its context (15 for the released models):
    # search the window sizes whose output could be chunk_length frames.
    reach = 4 * -(-geometry.delay(config) // hop) + 4
    for k in range(chunk_length, chunk_length + reach + 1):
        if geometry.encoded_length(config, k * hop, padded=False) == chunk_length:
            step = geometry.model_output_length(config, k * hop)
            return -(-n // step) * chunk_length if step > 0 else None
    return None


def _to_bytes(dac_file: DACFile) -> bytes:
    # Exactly the dict the original's DACFile.save builds, with plain Python scalars so the pickle
    # mentions no numpy scalar types; np.save pickles it (this is our own data, so pickling is safe).
    artifacts = {
        "codes": dac_file.codes.astype(np.uint16),
        "metadata": {
            "input_db": dac_file.input_db.astype(np.float32),
            "original_length": dac_file.original_length,
            "sample_rate": dac_file.sample_rate,
            "chunk_length": dac_file.chunk_length,
            "channels": dac_file.channels,
            "padding": dac_file.padding,
            "dac_version": dac_file.dac_version,
        },
    }
    buffer = io.BytesIO()
    np.save(buffer, artifacts, allow_pickle=True)
    return buffer.getvalue()


def write_dac_file(dac_file: DACFile, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``dac_file`` to ``path`` in the DAC 1.0.0 format, readable by the original ``DACFile.load``.

    The bytes go to a temporary file in the same directory which is then moved into place, so a reader
    never sees a half-written file and a failure leaves nothing behind. An existing ``path`` is an error
    unless ``overwrite=True``.
    """
    data = _to_bytes(dac_file)
    with atomic_output(path, overwrite=overwrite) as f:
        f.write(data)
    return path


def read_dac_file(path: str | os.PathLike) -> DACFile:
    """Read a DAC 1.0.0 file without running pickled code.

    Raises :class:`~jaxdac.io.safe_pickle.UnsafePickleError` if the pickle asks for anything but arrays and
    plain values, and :class:`DACFileError` if the file is truncated, corrupt or not a DAC 1.0.0 file.
    """
    path = Path(path)
    with open(path, "rb") as f:
        start = f.read(len(_NPY_MAGIC))
        if not start:
            raise DACFileError(f"{path} is an empty file (0 bytes), not a DAC file")
        if not _NPY_MAGIC.startswith(start):
            raise DACFileError(f"{path} is not a DAC file (it does not begin as a DAC file does)")
        if len(start) < len(_NPY_MAGIC):
            raise DACFileError(f"{path} is not a valid DAC file: it is truncated")
        f.seek(0)
        try:
            artifacts = _read_payload(f)
        except UnsafePickleError as e:
            raise UnsafePickleError(f"{path}: {e}") from None
        except DACFileError as e:
            raise DACFileError(f"{path} is not a valid DAC file: {e}") from None
        except EOFError:
            raise DACFileError(f"{path} is not a valid DAC file: it is truncated") from None
        except Exception as e:  # whatever a corrupt header or pickle raises inside numpy or pickle
            raise DACFileError(f"{path} is not a valid DAC file: {type(e).__name__}: {e}") from None

    codes, metadata = artifacts["codes"], artifacts["metadata"]
    version = metadata.get("dac_version")
    if version not in SUPPORTED_VERSIONS:
        raise DACFileError(
            f"{path} was written by DAC version {version!r}; this reader supports {', '.join(SUPPORTED_VERSIONS)}"
        )
    missing = [k for k in _METADATA_KEYS if k not in metadata]
    unknown = sorted(map(str, set(metadata) - set(_METADATA_KEYS)))
    if missing or unknown:
        what = [f"missing {', '.join(missing)}"] if missing else []
        what += [f"unexpected {', '.join(unknown)}"] if unknown else []
        raise DACFileError(f"{path} is not a valid DAC file: metadata keys {'; '.join(what)}")
    if not isinstance(codes, np.ndarray) or not isinstance(metadata["input_db"], (np.ndarray, float, int)):
        raise DACFileError(f"{path} is not a valid DAC file: codes and input_db must be arrays")
    try:
        return DACFile(codes=codes, **metadata)
    except DACFileError as e:
        raise DACFileError(f"{path} is not a valid DAC file: {str(e).removeprefix('invalid DAC file contents: ')}") from None


def _read_payload(f) -> dict[str, Any]:
    # .npy layout: magic "\x93NUMPY", version, a header dict literal (parsed by numpy with
    # ast.literal_eval, no code), then the data; for an object array the data is a pickle.
    version = npy_format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = npy_format.read_array_header_2_0(f)
    else:
        raise DACFileError(f"unsupported .npy format version {version[0]}.{version[1]}")
    if shape != () or dtype != np.dtype(object):
        raise DACFileError(f"it holds a {dtype} array of shape {shape}, not a pickled dict")
    obj = RestrictedUnpickler(f, {**PLAIN_GLOBALS, **NUMPY_GLOBALS}).load()
    if not isinstance(obj, np.ndarray) or obj.shape != () or obj.dtype != np.dtype(object):
        raise DACFileError("its payload is not a 0-d object array")
    artifacts = obj[()]
    if not isinstance(artifacts, dict) or not {"codes", "metadata"} <= set(artifacts):
        keys = sorted(map(str, artifacts)) if isinstance(artifacts, dict) else type(artifacts).__name__
        raise DACFileError(f"expected a dict with 'codes' and 'metadata', got {keys}")
    if not isinstance(artifacts["metadata"], dict):
        raise DACFileError("its metadata is not a dict")
    return artifacts
