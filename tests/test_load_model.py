"""load_model on real files written by the original (tests/fixtures/tiny_*.pth, made by
scripts/make_fixtures_files.py), the converted format, and the convert / download commands."""

import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import jaxdac
from jaxdac.cli import main
from jaxdac.weights import convert

FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


def _unpack(data, group):
    # The fixture packs a state dict as names, shapes (JSON) and one value vector.
    names, shapes = list(data[f"{group}.names"]), json.loads(str(data[f"{group}.shapes"]))
    values, out, at = data[f"{group}.values"], {}, 0
    for name, shape in zip(names, shapes):
        size = int(np.prod(shape))
        out[str(name)] = values[at : at + size].reshape(shape)
        at += size
    return out


@pytest.fixture(scope="module")
def fixture_data():
    return np.load(FIXTURES / "tiny_state_dict.npz")


@pytest.fixture(scope="module")
def expected_state(fixture_data):
    return _unpack(fixture_data, "weight_norm")


@pytest.mark.parametrize("name", ["weight_norm", "parametrizations"])
def test_load_original_checkpoint(name, fixture_data):
    model = jaxdac.load_model(path=FIXTURES / f"tiny_{name}.pth")
    assert model.config == jaxdac.DACConfig.from_kwargs(json.loads(str(fixture_data["kwargs_json"])))
    ours = convert.to_state_dict(model)
    expected = {k.replace("parametrizations.weight.original0", "weight_g").replace(
        "parametrizations.weight.original1", "weight_v"): v for k, v in _unpack(fixture_data, name).items()}
    assert set(ours) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


def test_convert_command_round_trip(tmp_path, capsys):
    src = FIXTURES / "tiny_weight_norm.pth"
    assert main(["convert", str(src), str(tmp_path / "tiny")]) == 0
    out = tmp_path / "tiny.safetensors"
    n = sum(v.size for v in convert.to_state_dict(jaxdac.load_model(path=src)).values())
    assert f"{n:,} parameters" in capsys.readouterr().out
    original, converted = jaxdac.load_model(path=src), jaxdac.load_model(path=out)
    assert converted.config == original.config
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 1, 3000)).astype(np.float32) * 0.1)
    a, b = original.encode(x), converted.encode(x)
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(original.decode(a.z), converted.decode(b.z))
    # The converted file carries no pickle: it is safetensors with a JSON header.
    assert convert.is_converted(out)
    # Existing output is kept without --overwrite.
    before = out.read_bytes()
    assert main(["convert", str(src), str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_convert_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    for args in (["convert", str(tmp_path / "missing.pth"), str(tmp_path / "o")], ["convert", str(bad), str(tmp_path / "o")]):
        proc = subprocess.run([sys.executable, "-m", "jaxdac", *args], capture_output=True, text=True)
        assert proc.returncode == 1
        assert proc.stderr.startswith("jaxdac: error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert not (tmp_path / "o.safetensors").exists()


def test_mismatched_state_dict_names_the_key(expected_state):
    config = jaxdac.load_model(path=FIXTURES / "tiny_weight_norm.pth").config
    state = convert.to_state_dict(convert.from_state_dict(config, expected_state))
    extra = dict(state, **{"encoder.block.9.alpha": np.ones((1, 4, 1), np.float32)})
    with pytest.raises(convert.ConversionError, match="unknown checkpoint key encoder.block.9.alpha"):
        convert.from_state_dict(config, extra)
    missing = dict(state)
    del missing["quantizer.quantizers.2.codebook.weight"]
    with pytest.raises(convert.ConversionError, match="missing key quantizer.quantizers.2.codebook.weight"):
        convert.from_state_dict(config, missing)
    wrong = dict(state, **{"decoder.model.6.weight_v": np.zeros((1, 4, 5), np.float32)})
    with pytest.raises(convert.ConversionError, match=r"decoder.model.6.weight_v has shape \(1, 4, 5\)"):
        convert.from_state_dict(config, wrong)
    with pytest.raises(convert.ConversionError, match="unknown checkpoint key"):
        convert.from_state_dict(config.replace(n_codebooks=3), state)


def test_download_offline_is_one_clear_line(tmp_path, monkeypatch):
    # Point the release table at a closed loopback port: no traffic leaves the machine.
    from jaxdac.weights import pretrained

    monkeypatch.setenv("JAXDAC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(pretrained, "_BASE_URL", "http://127.0.0.1:9")
    rc = main(["download", "--model-type", "24khz"])
    assert rc == 1
    assert list(tmp_path.iterdir()) == []
