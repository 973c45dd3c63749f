"""Weights: reading PyTorch checkpoints without torch (``torch_checkpoint``), the released files
(``pretrained``), and the mapping onto the Flax model (``convert``)."""

from jaxdac.weights.pretrained import DownloadError, download
from jaxdac.weights.torch_checkpoint import (
    CheckpointError,
    TorchCheckpoint,
    normalize_weight_norm_names,
    read_torch_checkpoint,
)

__all__ = [
    "CheckpointError",
    "DownloadError",
    "TorchCheckpoint",
    "download",
    "normalize_weight_norm_names",
    "read_torch_checkpoint",
]
