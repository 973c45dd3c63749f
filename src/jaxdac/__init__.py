"""jaxdac: the Descript Audio Codec (improved RVQGAN) in JAX and Flax NNX.

    model = jaxdac.load_model(path="weights.pth")    # or load_model("44khz", bitrate="8kbps")
    out = model.encode(audio)                        # audio [B, 1, T] at model.sample_rate
    audio = model.decode(out.z)

The names below are imported on first use (PEP 562), so ``import jaxdac`` (and the ``jaxdac`` command's
``--help``) does not pay for importing JAX until something needs it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "DAC": "jaxdac.nn.codec",
    "DACFile": "jaxdac.io.dacfile",
    "DACFileError": "jaxdac.io.dacfile",
    "compress": "jaxdac.inference",
    "compress_file": "jaxdac.inference",
    "decompress": "jaxdac.inference",
    "decompress_file": "jaxdac.inference",
    "download": "jaxdac.weights.pretrained",
    "read_dac_file": "jaxdac.io.dacfile",
    "write_dac_file": "jaxdac.io.dacfile",
    "DACConfig": "jaxdac.config",
    "PRESETS": "jaxdac.config",
    "CodeLookup": "jaxdac.nn.quantize",
    "ConversionError": "jaxdac.weights.convert",
    "EncodeOutput": "jaxdac.nn.codec",
    "ForwardOutput": "jaxdac.nn.codec",
    "StreamingDecoder": "jaxdac.streaming",
    "StreamingEncoder": "jaxdac.streaming",
    "get_config": "jaxdac.config",
    "load_model": "jaxdac.weights.load",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip this function
        return value
    # Subpackages and modules (jaxdac.dsp, jaxdac.io, jaxdac.geometry, ...) as attributes of the package.
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs, which do not run __getattr__
    from jaxdac.config import PRESETS, DACConfig, get_config
    from jaxdac.inference import compress, compress_file, decompress, decompress_file
    from jaxdac.io.dacfile import DACFile, DACFileError, read_dac_file, write_dac_file
    from jaxdac.nn.codec import DAC, EncodeOutput, ForwardOutput
    from jaxdac.nn.quantize import CodeLookup
    from jaxdac.streaming import StreamingDecoder, StreamingEncoder
    from jaxdac.weights.convert import ConversionError
    from jaxdac.weights.load import load_model
    from jaxdac.weights.pretrained import download
