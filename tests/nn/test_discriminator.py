"""The discriminator against golden outputs of the original (tests/fixtures/discriminator_tiny.npz, made by
scripts/make_fixtures_discriminator.py in the reference environment), its config, names, parameter count,
state-dict round trip, input checks, gradients and compute dtypes. No torch needed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import discriminator_cases as cases
from jaxdac.config import (
    DISCRIMINATOR_PRESETS,
    DiscriminatorConfig,
    get_discriminator_config,
)
from jaxdac.nn.discriminator import Discriminator, length_problem, minimum_length
from jaxdac.nn.layers import WNConv1d, WNConv2d, fold_weight_norm
from jaxdac.nn.precision import cast_for_compute
from jaxdac.weights import convert

fixture = cases.fixture
original_shapes = cases.original_shapes
compare_with_fixture = cases.compare_with_fixture


def case_config(case: str) -> DiscriminatorConfig:
    return DiscriminatorConfig.from_kwargs(cases.PTH_CASE if case == "pth" else cases.CASES[case])


def seeded(case: str) -> Discriminator:
    weights = cases.seeded_state_dict(original_shapes(case), cases.seed_of(case))
    return convert.discriminator_from_state_dict(case_config(case), weights)


def jitted_forward(model: Discriminator):
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda state, audio: nnx.merge(graphdef, state)(audio))
    return lambda audio: forward(state, audio)


# --- numbers against the original ---------------------------------------------------------------------


@pytest.mark.parametrize("case", list(cases.CASES))
def test_feature_maps_match_original(case):
    audio = fixture()[f"{case}/input"]
    kwargs = cases.CASES[case]
    regenerated = cases.case_input(kwargs["sample_rate"], cases.SECONDS, cases.seed_of(case))
    np.testing.assert_allclose(regenerated, audio, atol=1e-6)  # the fixture's input is this recipe's
    worst = compare_with_fixture(case, jitted_forward(seeded(case))(audio))
    print(f"\n{case}: worst feature-map error {worst:.2e} of scale")


def test_names_and_shapes_equal_the_originals():
    for case in (*cases.CASES, "pth"):
        assert convert.discriminator_torch_shapes(case_config(case)) == original_shapes(case), case
    assert convert.discriminator_torch_shapes(DiscriminatorConfig()) == original_shapes("default")
    # A few names spelled out, as the original's state dict has them.
    names = set(original_shapes("default"))
    assert {"discriminators.0.convs.0.0.weight_v", "discriminators.5.band_convs.0.0.0.weight_g",
            "discriminators.0.conv_post.bias", "discriminators.7.conv_post.weight_v"} <= names


def test_parameter_count_of_the_default_discriminator():
    model = convert.abstract_discriminator(DiscriminatorConfig())  # jax.eval_shape: nothing allocated
    leaves = nnx.to_flat_state(nnx.state(model, nnx.Param))
    assert all(isinstance(v.get_value(), jax.ShapeDtypeStruct) for _, v in leaves)
    count = sum(int(np.prod(v.get_value().shape)) for _, v in leaves)
    assert count == 42_519_760 == int(fixture()["default/n_parameters"])
    for case in (*cases.CASES, "pth"):
        model = convert.abstract_discriminator(case_config(case))
        count = sum(int(np.prod(v.get_value().shape)) for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param)))
        assert count == int(fixture()[f"{case}/n_parameters"]), case


# --- state dicts -------------------------------------------------------------------------------------


def test_state_dict_round_trip_is_exact():
    # One sub-discriminator of each kind: 2-d convolutions, grouped 1-d convolutions and bands.
    config = DiscriminatorConfig(rates=(2,), periods=(3,), fft_sizes=(128,))
    shapes = convert.discriminator_torch_shapes(config)
    weights = cases.seeded_state_dict(shapes, 7)
    model = convert.discriminator_from_state_dict(config, weights)
    back = convert.discriminator_to_state_dict(model)
    assert set(back) == set(weights)
    for key, value in weights.items():
        assert back[key].shape == value.shape and back[key].dtype == np.float32, key
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    # The layouts really are transposed (a 2-d kernel [out, in, kh, kw] is stored [kh, kw, in, out]).
    conv = model.discriminators[0].convs[1][0]
    assert isinstance(conv, WNConv2d)
    np.testing.assert_array_equal(np.asarray(conv.weight_v[...]),
                                  weights["discriminators.0.convs.1.0.weight_v"].transpose(2, 3, 1, 0))
    grouped = model.discriminators[1].convs[2][0]
    assert isinstance(grouped, WNConv1d) and grouped.groups == 16
    assert grouped.weight_v.shape == (41, 4, 256)


def test_bad_state_dicts_name_the_key():
    config = DISCRIMINATOR_PRESETS["tiny_narrow"]
    weights = cases.seeded_state_dict(convert.discriminator_torch_shapes(config), 1)
    with pytest.raises(convert.ConversionError, match="unknown checkpoint key discriminators.9.conv_post.bias"):
        convert.discriminator_from_state_dict(config, {**weights, "discriminators.9.conv_post.bias": np.zeros(1)})
    missing = dict(weights)
    del missing["discriminators.1.convs.2.0.weight_g"]
    with pytest.raises(convert.ConversionError, match="missing key discriminators.1.convs.2.0.weight_g"):
        convert.discriminator_from_state_dict(config, missing)
    wrong = {**weights, "discriminators.2.conv_post.weight_v": np.zeros((1, 8, 3, 2), np.float32)}
    with pytest.raises(convert.ConversionError, match=r"discriminators.2.conv_post.weight_v has shape \(1, 8, 3, 2\)"):
        convert.discriminator_from_state_dict(config, wrong)
    ints = {**weights, "discriminators.0.conv_post.bias": np.zeros(1, np.int64)}
    with pytest.raises(convert.ConversionError, match="dtype int64"):
        convert.discriminator_from_state_dict(config, ints)


# --- config -----------------------------------------------------------------------------------------


def test_config_defaults_are_the_originals_and_round_trip():
    config = DiscriminatorConfig()
    assert config.to_kwargs() == {
        "rates": [], "periods": [2, 3, 5, 7, 11], "fft_sizes": [2048, 1024, 512], "sample_rate": 44100,
        "bands": [[0.0, 0.1], [0.1, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1.0]],
    }
    assert DiscriminatorConfig.from_kwargs(config.to_kwargs()) == config
    # Lists (YAML, checkpoints) are normalised to tuples: configs hash and compare.
    listed = DiscriminatorConfig.from_kwargs({"rates": [1, 2], "periods": [2], "bands": [[0, 0.5], [0.5, 1]]})
    assert listed.rates == (1, 2) and listed.bands == ((0.0, 0.5), (0.5, 1.0)) and hash(listed) is not None
    assert config.band_bins(2048) == ((0, 102), (102, 256), (256, 512), (512, 768), (768, 1025))
    assert get_discriminator_config("tiny") is DISCRIMINATOR_PRESETS["tiny"]
    assert DISCRIMINATOR_PRESETS["tiny"].to_kwargs() == {**cases.CASES["tiny"], "bands": config.to_kwargs()["bands"]}
    with pytest.raises(ValueError, match="unknown discriminator preset 'huge'"):
        get_discriminator_config("huge")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"encoder_dim": 64}, "unknown discriminator config keys: encoder_dim"),
        ({"periods": [0]}, "periods must be positive"),
        ({"periods": [2.5]}, "2.5 is not a whole number"),
        ({"rates": [], "periods": [], "fft_sizes": []}, "no sub-discriminator"),
        ({"bands": [[0.5, 0.2]]}, r"band \(0.5, 0.2\) is not 0 <= low < high <= 1"),
        ({"fft_sizes": [16], "bands": [[0.0, 0.1]]}, r"band \(0.0, 0.1\) holds no bin of the 16-point STFT"),
        ({"rates": [0]}, "rates must be positive"),
        ({"mpd_channels": [4, 8]}, "mpd_channels must be 5 positive widths"),
    ],
)
def test_invalid_configs_say_why(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DiscriminatorConfig.from_kwargs(kwargs)


def test_narrow_widths_have_no_original_kwargs():
    narrow = DISCRIMINATOR_PRESETS["tiny_narrow"]
    assert not narrow.original_widths and DISCRIMINATOR_PRESETS["tiny"].original_widths
    with pytest.raises(ValueError, match="widths the original cannot build"):
        narrow.to_kwargs()
    shapes = convert.discriminator_torch_shapes(narrow)
    assert shapes["discriminators.0.convs.4.0.weight_v"] == (32, 32, 5, 1)
    assert shapes["discriminators.2.band_convs.0.1.0.weight_v"] == (8, 8, 3, 9)


# --- the module --------------------------------------------------------------------------------------


def narrow_model(seed: int = 0) -> Discriminator:
    return Discriminator(DISCRIMINATOR_PRESETS["tiny_narrow"], rngs=nnx.Rngs(seed))


# One narrow MPD and MRD: the cheapest discriminator to compile, for the checks of the module's maths.
SMALL = DISCRIMINATOR_PRESETS["tiny_narrow"].replace(periods=(3,), fft_sizes=(128,))


def small_model(seed: int = 0) -> Discriminator:
    return Discriminator(SMALL, rngs=nnx.Rngs(seed))


@jax.jit
def _small_forward(state, audio):
    return nnx.merge(_SMALL_DEF, state)(audio)


_SMALL_DEF = nnx.graphdef(small_model())


def output_shapes(config: DiscriminatorConfig, audio_shape) -> list[list[tuple[int, ...]]]:
    """Feature-map shapes by jax.eval_shape: nothing computed."""
    graphdef, state = nnx.split(convert.abstract_discriminator(config))
    out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, jax.ShapeDtypeStruct(audio_shape, jnp.float32))
    return [[f.shape for f in maps] for maps in out]


def test_init_is_pytorchs_default():
    config = DISCRIMINATOR_PRESETS["tiny_narrow"].replace(rates=(1,), periods=(2,), fft_sizes=(128,))
    model = Discriminator(config, rngs=nnx.Rngs(0))
    convs = [layer for _, layer in nnx.iter_graph(model) if isinstance(layer, (WNConv1d, WNConv2d))]
    assert len(convs) == 6 + 7 + 26
    for conv in convs:
        v, g, bias = (np.asarray(conv.weight_v[...]), np.asarray(conv.weight_g[...]), np.asarray(conv.bias[...]))
        bound = 1.0 / np.sqrt(np.prod(v.shape[:-1]))  # fan_in = (in / groups) * kernel taps
        assert np.abs(v).max() <= bound and np.abs(v).max() > 0.9 * bound
        # Weight norm starts at the identity: g = ||v|| per output channel.
        np.testing.assert_allclose(g, np.sqrt((v.astype(np.float64) ** 2).reshape(-1, v.shape[-1]).sum(0)), rtol=1e-5)
        # Unlike the generator's, the discriminator's biases keep PyTorch's uniform init.
        assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0


def test_output_layout_is_the_originals():
    n = 1000
    mpd2, mpd3, mrd256, mrd128 = output_shapes(DISCRIMINATOR_PRESETS["tiny_narrow"], (3, 1, n))
    assert mpd2 == [(3, 4, 167, 2), (3, 8, 56, 2), (3, 16, 19, 2), (3, 32, 7, 2), (3, 32, 7, 2), (3, 1, 7, 2)]
    assert mpd3[0] == (3, 4, 112, 3)  # 1000 samples padded to 1002: 334 rows of 3
    frames = -(-n // 64)
    assert len(mrd256) == 5 * 5 + 1 and mrd256[0] == (3, 8, frames, 12)
    assert mrd256[-1] == (3, 1, frames, 2 + 3 + 4 + 4 + 5)  # the bands' widths after three halvings
    assert mrd128[-1] == (3, 1, -(-n // 32), 1 + 2 + 2 + 2 + 3)
    msd1, msd3 = output_shapes(DiscriminatorConfig.from_kwargs(cases.CASES["tiny_msd"]), (2, 1, n))
    assert msd1 == [(2, 16, 1000), (2, 64, 250), (2, 256, 63), (2, 1024, 16), (2, 1024, 4), (2, 1024, 4), (2, 1, 4)]
    assert msd3[0] == (2, 16, 333)  # 24 kHz -> 8 kHz: floor(1000 / 3) samples


def test_preprocessing_removes_offset_and_gain():
    # The original normalises each item (DC removed, peak 0.8) before every sub-discriminator, so the
    # outputs do not depend on an offset or a gain of the input.
    state = nnx.state(small_model())
    audio = jnp.asarray(cases.case_input(44100, 0.02, 5))
    a, b = _small_forward(state, audio), _small_forward(state, 3.0 * audio + 0.2)
    for maps_a, maps_b in zip(a, b):
        for x, y in zip(maps_a, maps_b):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=2e-5 * float(jnp.abs(x).max()))


@pytest.mark.parametrize(
    "shape, dtype, message",
    [
        ((2, 2000), jnp.float32, r"mono audio \[batch, 1, samples\], got shape \(2, 2000\)"),
        ((2, 2, 2000), jnp.float32, r"got shape \(2, 2, 2000\)"),
        ((2, 1, 2000), jnp.int16, "floating-point audio, got int16"),
        ((2, 1, 40), jnp.float32, "audio of 40 samples does not fit the discriminator"),
    ],
)
def test_bad_audio_is_refused(shape, dtype, message):
    with pytest.raises(ValueError, match=message):
        _small_forward(nnx.state(small_model()), jnp.zeros(shape, dtype))


def test_lengths_are_refused_exactly_where_the_original_refuses_them():
    # Measured with the original (PyTorch's reflect padding needs more samples than it pads): the default
    # discriminator takes 897..1024 samples, refuses 1025..1152 (the 2048-point STFT's right pad grows
    # with the rest of the last hop) and takes every length from 1153 up; a period-11 MPD alone refuses
    # 1..5 and 11 samples.
    default = DiscriminatorConfig()
    accepted = [t for t in range(1, 1300) if length_problem(default, t) is None]
    assert accepted == [*range(897, 1025), *range(1153, 1300)]
    assert minimum_length(default) == 1153
    period_11 = DiscriminatorConfig(periods=(11,), fft_sizes=())
    assert [t for t in range(1, 30) if length_problem(period_11, t)] == [1, 2, 3, 4, 5, 11]
    narrow = DISCRIMINATOR_PRESETS["tiny_narrow"]
    assert minimum_length(narrow) == 145
    output_shapes(narrow, (1, 1, 113))
    with pytest.raises(ValueError, match="audio of 130 samples does not fit the discriminator: the 256-point "
                                         "STFT reflect-pads it by 96 and 158 samples.*from 145 samples up"):
        output_shapes(narrow, (1, 1, 130))


def test_gradient_matches_finite_differences():
    # The train step differentiates through the discriminator, its STFT and its folds: a directional
    # derivative of a score with respect to the input equals central differences.
    graphdef, state = nnx.split(small_model(3))
    audio = jnp.asarray(cases.case_input(44100, 0.02, 9))

    def score(audio):
        return sum(jnp.mean(maps[-1] ** 2) + jnp.mean(maps[0]) for maps in nnx.merge(graphdef, state)(audio))

    grad = jax.jit(jax.grad(score))(audio)
    assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).max()) > 0
    direction = jnp.asarray(np.random.default_rng(0).standard_normal(audio.shape).astype(np.float32))
    eps = 1e-3
    f = jax.jit(score)
    numeric = (f(audio + eps * direction) - f(audio - eps * direction)) / (2 * eps)
    analytic = jnp.vdot(grad, direction)
    assert abs(float(numeric - analytic)) <= 2e-2 * abs(float(analytic)), (float(numeric), float(analytic))
    # Parameter gradients reach every tensor.
    grads = jax.jit(jax.grad(lambda s: sum(jnp.mean(m[-1] ** 2) for m in nnx.merge(graphdef, s)(audio))))(state)
    for path, g in nnx.to_flat_state(grads):
        assert bool(jnp.all(jnp.isfinite(g.get_value()))), path


def test_folded_and_bfloat16_compute_stay_close():
    model = small_model(1)
    audio = jnp.asarray(cases.case_input(44100, 0.02, 4))
    reference = _small_forward(nnx.state(model), audio)
    folded = nnx.clone(model)
    fold_weight_norm(folded)
    low = nnx.clone(model)
    cast_for_compute(low, jnp.bfloat16)  # as the train step's mixed precision does
    assert low.discriminators[1].band_convs[4][3][0].weight_v.get_value().dtype == jnp.bfloat16
    for maps_ref, maps_fold, maps_low in zip(reference, _small_forward(nnx.state(folded), audio),
                                             _small_forward(nnx.state(low), audio)):
        for r, f, b in zip(maps_ref, maps_fold, maps_low):
            scale = float(jnp.abs(r).max())
            assert float(jnp.abs(f - r).max()) <= 1e-5 * scale
            assert b.dtype == jnp.bfloat16
            assert float(jnp.abs(b.astype(jnp.float32) - r).max()) <= 5e-2 * scale
