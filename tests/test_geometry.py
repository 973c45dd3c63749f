"""Geometry (integer maths in jaxdac.geometry) against the real module stack, via jax.eval_shape."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdac import geometry
from jaxdac.config import PRESETS
from jaxdac.weights.convert import abstract_model

# Parameter counts of the original (dac.DAC(**kwargs), counted in the reference environment; the
# 44.1 kHz one is also stated in ../shared/reference/README.md). The fixture files record them too.
ORIGINAL_PARAMETERS = {
    "dac_44khz": 76_651_890,
    "dac_44khz_16kbps": 64_213_250,
    "dac_24khz": 74_708_706,
    "dac_16khz": 74_175_906,
}


@pytest.fixture(scope="module", params=list(PRESETS))
def preset(request):
    return request.param, PRESETS[request.param], abstract_model(PRESETS[request.param])


def _shapes(model, fn, *args):
    graphdef, state = nnx.split(model)
    return jax.eval_shape(lambda s, *a: fn(nnx.merge(graphdef, s), *a), state, *args)


@pytest.mark.parametrize("n_samples", [1, 511, 512, 513, 44100, 3 * 44100 + 137])
def test_padded_lengths_match_modules(preset, n_samples):
    _, config, model = preset
    audio = jax.ShapeDtypeStruct((2, 1, n_samples), jnp.float32)
    out = _shapes(model, lambda m, a: m.encode(a), audio)
    frames = geometry.encoded_length(config, n_samples)
    assert out.codes.shape == (2, config.n_codebooks, frames)
    assert out.z.shape == (2, config.latent_dim, frames)
    assert out.latents.shape == (2, sum(config.codebook_dims), frames)
    decoded = _shapes(model, lambda m, z: m.decode(z), out.z)
    assert decoded.shape == (2, 1, geometry.decoded_length(config, frames))


@pytest.mark.parametrize("n_frames", [40, 57])
def test_unpadded_lengths_match_modules(preset, n_frames):
    _, config, model = preset
    window = n_frames * config.hop_length + 2 * geometry.delay(config)
    x = jax.ShapeDtypeStruct((1, window, 1), jnp.float32)
    latent = _shapes(model, lambda m, a: m.encode_latent(a, padded=False), x)
    assert latent.shape[1] == geometry.encoded_length(config, window, padded=False)
    y = _shapes(model, lambda m, z: m.decode_latent(z, padded=False), latent)
    assert y.shape[1] == geometry.model_output_length(config, window)


def test_released_decoders_and_the_short_stride5_decoder():
    # 44.1 kHz family decodes exactly hop * frames; the 2,4,5,8 family 8 samples fewer (as the original).
    assert geometry.decoded_length(PRESETS["dac_44khz"], 100) == 512 * 100
    assert geometry.decoded_length(PRESETS["dac_24khz"], 100) == 320 * 100 - 8
    assert geometry.decoded_length(PRESETS["dac_16khz"], 100) == 320 * 100 - 8


def test_delay_and_chunk_hop_match_the_original():
    # Values measured in the original: delay 7904 (reference README), 1 s window -> hop 28522.
    assert geometry.delay(PRESETS["dac_44khz"]) == 7904
    window, hop = geometry.chunk_plan(PRESETS["dac_44khz"], 10 * 44100, 1.0)
    assert (window, hop) == (44544, 28522)
    # The paper's table: window 0.37 s -> hop 362, 5 s -> 204650, 20 s -> 866154.
    assert geometry.chunk_plan(PRESETS["dac_44khz"], 0, 0.37)[1] == 362
    assert geometry.chunk_plan(PRESETS["dac_44khz"], 0, 5.0)[1] == 204650
    assert geometry.chunk_plan(PRESETS["dac_44khz"], 0, 20.0)[1] == 866154


@pytest.mark.parametrize("name", list(ORIGINAL_PARAMETERS))
def test_parameter_counts_equal_the_original(name):
    model = abstract_model(PRESETS[name])
    count = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert count == ORIGINAL_PARAMETERS[name]


def test_full_size_training_forward_shapes():
    model = abstract_model(PRESETS["dac_44khz"])
    audio = jax.ShapeDtypeStruct((2, 1, 44100), jnp.float32)
    out = _shapes(model, lambda m, a: m(a), audio)
    assert out.audio.shape == (2, 1, 44100)
    assert out.codes.shape == (2, 9, 87)
