"""Reading the original's discriminator ``weights.pth`` (tests/fixtures/discriminator_tiny.pth, written by the
original's ``Discriminator.save`` in scripts/make_fixtures_discriminator.py) without torch, and refusing
files of another kind with one clear error."""

from __future__ import annotations

import json
import zipfile

import jax
import numpy as np
import pytest
from flax import nnx

import discriminator_cases as cases
from jaxdac.config import DiscriminatorConfig
from jaxdac.io.safe_pickle import UnsafePickleError
from jaxdac.nn.discriminator import Discriminator
from jaxdac.weights import convert
from jaxdac.weights.discriminator import load_discriminator
from jaxdac.weights.torch_checkpoint import CheckpointError, read_torch_checkpoint, write_torch_checkpoint

FIXTURES = cases.FIXTURES
PTH = cases.PTH_FIXTURE
CONFIG = DiscriminatorConfig.from_kwargs(cases.PTH_CASE)


def expected_weights() -> dict[str, np.ndarray]:
    return cases.seeded_state_dict(convert.discriminator_torch_shapes(CONFIG), cases.seed_of("pth"))


def assert_weights(model: Discriminator, weights: dict[str, np.ndarray]) -> None:
    ours = convert.discriminator_to_state_dict(model)
    assert set(ours) == set(weights)
    for key, value in weights.items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


def test_reads_the_originals_file_and_runs_like_the_original():
    # The original's save records the *default* kwargs whatever the model (checked here on its file), so a
    # non-default discriminator needs its config.
    assert DiscriminatorConfig.from_kwargs(read_torch_checkpoint(PTH).metadata["kwargs"]) == DiscriminatorConfig()
    model = load_discriminator(PTH, config=CONFIG)
    assert isinstance(model, Discriminator) and model.config == CONFIG
    assert_weights(model, expected_weights())
    # And its outputs are the original's on the fixture's input (the same check as tests/nn/).
    graphdef, state = nnx.split(model)
    outputs = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, cases.fixture()["pth/input"])
    worst = cases.compare_with_fixture("pth", outputs)
    print(f"\npth: worst feature-map error {worst:.2e} of scale")


def test_the_files_default_kwargs_are_not_trusted_silently():
    with pytest.raises(convert.ConversionError, match=r"discriminator_tiny.pth: unknown checkpoint key "
                                                      r"discriminators.0.band_convs.0.0.0.bias.*; the file holds "
                                                      r"the weights of 1 MRD with 1 band, the config describes "
                                                      r"5 MPDs, 3 MRDs with 5 bands; the config was read from "
                                                      r"the file's kwargs.*records as the defaults.*pass the "
                                                      r"discriminator's real DiscriminatorConfig as config="):
        load_discriminator(PTH)
    msd = DiscriminatorConfig(rates=(1, 2), periods=(2,), fft_sizes=(128,), bands=((0.0, 0.5),))
    with pytest.raises(convert.ConversionError, match="the file holds the weights of 1 MRD with 1 band, the "
                                                      "config describes 1 MPD, 2 MSDs, 1 MRD with 1 band$"):
        load_discriminator(PTH, config=msd)


def test_kwargs_written_by_jaxdac_describe_the_model(tmp_path):
    # jaxdac writes the real kwargs (train.save_original does): then no config is needed.
    path = write_torch_checkpoint(tmp_path / "weights.pth", expected_weights(), {"kwargs": CONFIG.to_kwargs()})
    model = load_discriminator(path)
    assert model.config == CONFIG
    assert_weights(model, expected_weights())


def test_parametrization_names_are_accepted(tmp_path):
    renamed = {}
    for key, value in expected_weights().items():
        key = key.replace(".weight_g", ".parametrizations.weight.original0")
        renamed[key.replace(".weight_v", ".parametrizations.weight.original1")] = value
    path = write_torch_checkpoint(tmp_path / "weights.pth", renamed, {"kwargs": CONFIG.to_kwargs()})
    assert_weights(load_discriminator(path), expected_weights())


def test_a_bare_state_dict_needs_a_config(tmp_path):
    path = write_torch_checkpoint(tmp_path / "bare.pth", expected_weights())
    with pytest.raises(convert.ConversionError, match="no metadata\\['kwargs'\\].*config="):
        load_discriminator(path)
    assert_weights(load_discriminator(path, config=CONFIG), expected_weights())


def test_a_generator_checkpoint_is_named_as_such():
    with pytest.raises(convert.ConversionError, match="holds DAC generator weights, not a discriminator; "
                                                      "load it with jaxdac.load_model"):
        load_discriminator(FIXTURES / "tiny_weight_norm.pth")


@pytest.mark.parametrize("kind", ["truncated", "random zip", "text", "other tensors", "extra key", "bad kwargs"])
def test_files_of_another_kind_give_one_clear_error(tmp_path, kind):
    path = tmp_path / "weights.pth"
    if kind == "truncated":
        data = PTH.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        error, message = CheckpointError, "truncated or corrupt"
    elif kind == "random zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not a model")
        error, message = CheckpointError, "no data.pkl record"
    elif kind == "text":
        path.write_text("hello")
        error, message = CheckpointError, "not a PyTorch checkpoint"
    elif kind == "other tensors":
        write_torch_checkpoint(path, {"linear.weight": np.zeros((2, 2), np.float32)})
        error, message = convert.ConversionError, r"not a discriminator checkpoint \(its weights are linear.weight\)"
    elif kind == "extra key":
        weights = {**expected_weights(), "discriminators.0.extra.bias": np.zeros(3, np.float32)}
        write_torch_checkpoint(path, weights, {"kwargs": CONFIG.to_kwargs()})
        error, message = convert.ConversionError, "unknown checkpoint key discriminators.0.extra.bias"
    else:
        write_torch_checkpoint(path, expected_weights(), {"kwargs": {**CONFIG.to_kwargs(), "periods": [0]}})
        error, message = convert.ConversionError, "invalid discriminator config: periods must be positive"
    with pytest.raises(error, match=message) as info:
        load_discriminator(path)
    assert str(path) in str(info.value)


def test_missing_file_and_wrong_config_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="no discriminator weights file"):
        load_discriminator(tmp_path / "absent.pth")
    with pytest.raises(TypeError, match="config must be a DiscriminatorConfig"):
        load_discriminator(PTH, config=CONFIG.to_kwargs())


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    # The reader is the restricted one: a data.pkl naming any callable but tensors' is refused unrun.
    path = tmp_path / "evil.pth"
    payload = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    with pytest.raises(UnsafePickleError):
        load_discriminator(path)


def test_export_format_round_trip(tmp_path):
    # discriminator_to_state_dict + the torch-free writer with the real kwargs (as train.save_original
    # writes them) give a file this loader reads back exactly, without a config argument. (That the
    # original's loader reads such files is checked live in tests/parity.)
    config = DiscriminatorConfig(periods=(), fft_sizes=(128,), sample_rate=24000)
    model = Discriminator(config, rngs=nnx.Rngs(3))
    path = write_torch_checkpoint(tmp_path / "weights.pth", convert.discriminator_to_state_dict(model),
                                  {"kwargs": config.to_kwargs()})
    back = load_discriminator(path)
    for (p1, a), (p2, b) in zip(nnx.to_flat_state(nnx.state(model)), nnx.to_flat_state(nnx.state(back))):
        assert p1 == p2
        np.testing.assert_array_equal(np.asarray(a.get_value()), np.asarray(b.get_value()))
    assert json.loads(json.dumps(config.to_kwargs())) == read_torch_checkpoint(path).metadata["kwargs"]
    assert jax.tree.structure(nnx.state(model)) == jax.tree.structure(nnx.state(back))
