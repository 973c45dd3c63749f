"""save_original: the original's weights.pth files, written without torch, read back by jaxdac exactly."""

from __future__ import annotations

import numpy as np
import pytest

from jaxdac.config import DISCRIMINATOR_PRESETS, PRESETS
from jaxdac.train.export import save_original
from jaxdac.train.step import StepConfig, init_state
from jaxdac.weights import convert
from jaxdac.weights.discriminator import load_discriminator
from jaxdac.weights.load import load_model
from jaxdac.weights.torch_checkpoint import read_torch_checkpoint
from train_parity import seeded_models


def test_files_are_the_originals_format_and_load_back_exactly(tmp_path):
    generator, discriminator = seeded_models()
    state = init_state(generator, discriminator, StepConfig(quantizer_dropout=0.5))
    dac_path, disc_path = save_original(state, tmp_path / "export")
    assert dac_path == tmp_path / "export" / "dac" / "weights.pth"
    assert disc_path == tmp_path / "export" / "discriminator" / "weights.pth"

    checkpoint = read_torch_checkpoint(dac_path)
    # The real configuration, quantizer_dropout included (the original's own save records False).
    assert checkpoint.metadata == {"kwargs": {**PRESETS["tiny"].to_kwargs(), "quantizer_dropout": 0.5}}
    assert all(k.endswith(("weight_g", "weight_v", "bias", "alpha", "codebook.weight")) for k in checkpoint.state_dict)
    assert read_torch_checkpoint(disc_path).metadata == {"kwargs": DISCRIMINATOR_PRESETS["tiny"].to_kwargs()}

    loaded = load_model(path=dac_path)
    assert loaded.config == state.generator_config
    for key, value in convert.to_state_dict(state.generator_model()).items():
        np.testing.assert_array_equal(convert.to_state_dict(loaded)[key], value, err_msg=key)
    loaded_d = load_discriminator(disc_path)
    assert loaded_d.config == DISCRIMINATOR_PRESETS["tiny"]
    ours = convert.discriminator_to_state_dict(state.discriminator_model())
    for key, value in convert.discriminator_to_state_dict(loaded_d).items():
        np.testing.assert_array_equal(value, ours[key], err_msg=key)


def test_existing_files_are_kept_and_narrow_discriminators_refused(tmp_path):
    generator, discriminator = seeded_models()
    state = init_state(generator, discriminator)
    save_original(state, tmp_path)
    before = (tmp_path / "dac" / "weights.pth").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_original(state, tmp_path)
    assert (tmp_path / "dac" / "weights.pth").read_bytes() == before
    save_original(state, tmp_path, overwrite=True)

    from flax import nnx

    from jaxdac.nn.discriminator import Discriminator

    narrow = Discriminator(DISCRIMINATOR_PRESETS["tiny_narrow"], rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="widths the original cannot build"):
        save_original(init_state(generator, narrow), tmp_path / "narrow")
    assert not (tmp_path / "narrow").exists()  # nothing written, not even the generator
