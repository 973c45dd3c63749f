"""File formats: DAC files (``dacfile``), the restricted unpickler they rely on (``safe_pickle``), audio.

Submodules are imported on demand; this package imports nothing heavy.
"""

from jaxdac.io.audio import AudioFileError, read_audio, write_audio
from jaxdac.io.dacfile import DACFile, DACFileError, read_dac_file, write_dac_file
from jaxdac.io.safe_pickle import UnsafePickleError

__all__ = ["AudioFileError", "DACFile", "DACFileError", "UnsafePickleError", "read_audio", "read_dac_file", "write_audio", "write_dac_file"]
