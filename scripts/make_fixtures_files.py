"""File-format fixtures written by the ORIGINAL implementation, for the main test suite.

Run under the reference interpreter (built by scripts/install_reference.sh):

    PYTHONPATH=tests:scripts .venv-reference/bin/python scripts/make_fixtures_files.py

Writes to tests/fixtures/:

* ``tiny_weight_norm.pth``: a seeded tiny ``dac.DAC`` saved by the original's ``model.save(path,
  package=False)``, with the classic ``weight_g``/``weight_v`` names of the released weights;
* ``tiny_parametrizations.pth``: the same model converted to ``torch.nn.utils.parametrizations.weight_norm``
  (names ``parametrizations.weight.original0/1``) and saved the same way;
* ``tiny_layouts.pth``: a bare dict of tensors with shared storages, offsets, transposed strides, a 0-d and
  an empty tensor, a Parameter and the dtypes float16/bfloat16/float64/int64/int32/int8/uint8/bool/uint16
  (``_rebuild_tensor_v3``) and complex64 with a lazily conjugated view;
* ``tiny_legacy.pth``: a small dict saved in the legacy (pre-1.6, non-zip) format;
* ``tiny_state_dict.npz``: every tensor above, as saved: the two model state dicts packed as
  ``<group>.names``/``.shapes``/``.values`` (``pack``), the layout tensors as ``layouts.<name>`` (bfloat16 as
  its raw uint16 bits), and the checkpoints' ``metadata["kwargs"]`` as JSON in ``kwargs_json``;
* ``original.dac``: a stereo DAC 1.0.0 file written by the original's ``DACFile.save``, with its values in
  ``original_dac_expected.npz``.

The model is smaller than jaxdac's ``tiny`` preset (same strides, narrower layers) so that all fixtures
stay under 0.5 MB; every state-dict name pattern of the full model occurs in it.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"

# Same strides as jaxdac.config.tiny, narrower layers (about 13k parameters).
TINY_FILE_KWARGS = dict(encoder_dim=1, latent_dim=8, decoder_dim=16, n_codebooks=4, codebook_size=64, codebook_dim=4)


def build_model(kwargs: dict, seed: int):
    import dac

    torch.manual_seed(seed)
    model = dac.DAC(**kwargs)
    # Perturb every tensor so that no value is a constant of the initialisation (weight_g starts as
    # exactly the norm of weight_v; alpha starts at 1; biases at 0).
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.add_(0.1 * torch.randn_like(tensor))
    return model


def to_parametrizations(model) -> None:
    """Replace the classic weight-norm hooks by the parametrization API, in place."""
    for module in model.modules():
        if hasattr(module, "weight_g"):
            torch.nn.utils.remove_weight_norm(module)
            torch.nn.utils.parametrizations.weight_norm(module, dim=0)


def numpy_of(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().resolve_conj().resolve_neg()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(np.uint16)  # raw bits: numpy has no bfloat16
    if tensor.dtype == torch.uint16:
        return tensor.to(torch.int32).numpy().astype(np.uint16)
    return tensor.numpy().copy()


def save_checkpoint(model, path: Path) -> dict[str, np.ndarray]:
    """``model.save(path, package=False)`` and the arrays of what it saved."""
    model.save(str(path), package=False)
    return {name: numpy_of(t) for name, t in model.state_dict().items()}


def pack(group: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All float32 tensors of a state dict as one vector plus names and shapes (an .npz entry costs about
    300 bytes, more than most tensors of the tiny model). ``unpack`` in tests/weights reverses it."""
    assert all(a.dtype == np.float32 for a in arrays.values())
    return {
        f"{group}.names": np.array(list(arrays)),
        f"{group}.shapes": np.array(json.dumps([list(a.shape) for a in arrays.values()])),
        f"{group}.values": np.concatenate([a.ravel() for a in arrays.values()]),
    }


def layouts() -> dict[str, torch.Tensor]:
    """Tensors exercising storage sharing, offsets, strides and dtypes."""
    g = torch.Generator().manual_seed(3)
    base = torch.randn(6, 5, generator=g)
    param = torch.nn.Parameter(torch.randn(3, 2, generator=g))
    complex_ = torch.randn(4, dtype=torch.complex64, generator=g)
    return {
        "base": base,
        "transposed": base.t(),  # shares base's storage, strides (1, 5)
        "row": base[2],  # offset 10
        "column": base[:, 3],  # offset 3, stride 5
        "every_other": base[1::2, ::2],  # offset 5, strides (10, 2)
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(0, 3),
        "parameter": param,
        "half": torch.randn(2, 3, generator=g).half(),
        "bfloat16": torch.randn(5, generator=g).bfloat16(),
        "int64": torch.arange(-3, 3, dtype=torch.int64).reshape(2, 3),
        "int32": torch.tensor([7, -8, 2**31 - 1], dtype=torch.int32),
        "int8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "uint8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "uint16": torch.tensor([0, 1, 65535], dtype=torch.uint16),
        "complex": complex_,
        "conj": complex_.conj(),  # saved with the conj bit set
    }


def write_dac(path: Path, seed: int = 5, batch: int = 2, channels: int = 2, n_codebooks: int = 4,
              chunk_length: int = 7, chunks: int = 3, codebook_size: int = 1024) -> dict:
    """A DAC 1.0.0 file written by the original's DACFile.save; returns its expected values."""
    from dac.model.base import DACFile

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, codebook_size, size=(batch * channels, n_codebooks, chunk_length * chunks))
    input_db = rng.uniform(-40, -10, size=batch).astype(np.float32)
    meta = dict(chunk_length=chunk_length, original_length=int(rng.integers(10_000, 20_000)),
                channels=channels, sample_rate=48_000, padding=False, dac_version="1.0.0")
    DACFile(codes=torch.from_numpy(codes), input_db=torch.from_numpy(input_db), **meta).save(path)
    return dict(codes=codes, input_db=input_db, **meta)


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    expected: dict[str, np.ndarray] = {}

    model = build_model(TINY_FILE_KWARGS, seed=0)
    expected.update(pack("weight_norm", save_checkpoint(model, FIXTURES / "tiny_weight_norm.pth")))
    to_parametrizations(model)
    expected.update(pack("parametrizations", save_checkpoint(model, FIXTURES / "tiny_parametrizations.pth")))

    tensors = layouts()
    torch.save(tensors, FIXTURES / "tiny_layouts.pth")
    for name, tensor in tensors.items():
        expected[f"layouts.{name}"] = numpy_of(tensor)
    torch.save({"weight": torch.ones(2)}, FIXTURES / "tiny_legacy.pth", _use_new_zipfile_serialization=False)

    expected["kwargs_json"] = np.array(json.dumps(model.metadata["kwargs"], sort_keys=True))
    np.savez_compressed(FIXTURES / "tiny_state_dict.npz", **expected)

    values = write_dac(FIXTURES / "original.dac")
    np.savez(FIXTURES / "original_dac_expected.npz", **values)

    total = 0
    for name in ("tiny_weight_norm.pth", "tiny_parametrizations.pth", "tiny_layouts.pth", "tiny_legacy.pth",
                 "tiny_state_dict.npz", "original.dac", "original_dac_expected.npz"):
        size = (FIXTURES / name).stat().st_size
        total += size
        print(f"wrote tests/fixtures/{name} ({size / 1e3:.0f} kB)")
    print(f"total {total / 1e3:.0f} kB")


if __name__ == "__main__":
    sys.exit(main())
