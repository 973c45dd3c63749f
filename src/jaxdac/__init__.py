"""jaxdac: the Descript Audio Codec (improved RVQGAN) in JAX and Flax NNX.

    model = jaxdac.load_model(path="weights.pth")    # or load_model("44khz", bitrate="8kbps")
    out = model.encode(audio)                        # audio [B, 1, T] at model.sample_rate
    audio = model.decode(out.z)
"""

from jaxdac.config import PRESETS, DACConfig, get_config
from jaxdac.inference import compress, compress_file, decompress, decompress_file
from jaxdac.io.dacfile import DACFile, DACFileError, read_dac_file, write_dac_file
from jaxdac.nn.codec import DAC, EncodeOutput, ForwardOutput
from jaxdac.nn.quantize import CodeLookup
from jaxdac.streaming import StreamingDecoder, StreamingEncoder
from jaxdac.weights.convert import ConversionError
from jaxdac.weights.load import load_model
from jaxdac.weights.pretrained import download

__version__ = "0.1.0"

__all__ = [
    "DAC",
    "DACFile",
    "DACFileError",
    "compress",
    "compress_file",
    "decompress",
    "decompress_file",
    "download",
    "read_dac_file",
    "write_dac_file",
    "DACConfig",
    "PRESETS",
    "CodeLookup",
    "ConversionError",
    "EncodeOutput",
    "ForwardOutput",
    "StreamingDecoder",
    "StreamingEncoder",
    "get_config",
    "load_model",
]
