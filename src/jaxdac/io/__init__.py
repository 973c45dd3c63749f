"""File formats: DAC files (``dacfile``), the restricted unpickler they rely on (``safe_pickle``), audio.

Submodules are imported on demand; this package imports nothing heavy.
"""

from jaxdac.io.dacfile import DACFile, DACFileError, read_dac_file, write_dac_file
from jaxdac.io.safe_pickle import UnsafePickleError

__all__ = ["DACFile", "DACFileError", "UnsafePickleError", "read_dac_file", "write_dac_file"]
