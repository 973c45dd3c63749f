"""The inference speed paths compute what the plain modules compute: folded weight norm, the polyphase
transposed convolution, the prepared-state chunk functions and their bfloat16 mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdac import geometry, inference
from jaxdac.nn.layers import WNConv1d, WNConvTranspose1d, fold_weight_norm, store_out_major
from model_parity import seeded_model


@pytest.mark.parametrize("stride", [2, 4, 5, 8])
@pytest.mark.parametrize("padded", [True, False])
def test_polyphase_transposed_conv_equals_zero_inserted_conv(stride, padded):
    layer = WNConvTranspose1d(6, 5, geometry.upsample_conv(stride), rngs=nnx.Rngs(stride))
    x = jax.random.normal(jax.random.key(1), (2, 11, 6))
    fast, slow = layer._polyphase(x, padded), layer._dilated(x, padded)
    assert fast.shape == slow.shape == (2, geometry.upsample_conv(stride).output_length(11, padded), 5)
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    assert layer(x, padded).shape == fast.shape


def test_folded_layers_equal_unfolded():
    conv = WNConv1d(3, 4, geometry.residual_conv(3), rngs=nnx.Rngs(0))
    conv.weight_g.set_value(conv.weight_g[...] * 1.7)  # g != ||v||: the fold must apply the ratio
    x = jax.random.normal(jax.random.key(2), (1, 40, 3))
    before = conv(x, False)
    fold_weight_norm(conv)
    assert conv.weight_g.get_value() is None
    np.testing.assert_allclose(conv(x, False), before, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spec", [geometry.residual_conv(3), geometry.downsample_conv(4), geometry.pointwise_conv()])
def test_out_major_kernels_and_the_unfolded_matmul_equal_the_convolution(spec):
    """Streams store wide layers' kernels out-major and run them as one matmul over gathered taps
    (WNConv1d.unfolded): the same convolution, and kernel() still gives [k, in, out]."""
    conv = WNConv1d(6, 5, spec, rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(3), (2, 37, 6))
    fold_weight_norm(conv)
    kernel, expected = conv.kernel(), conv(x, False)
    np.testing.assert_allclose(conv.unfolded(x), expected, rtol=1e-5, atol=1e-6)
    store_out_major(conv, min_channels=6)
    assert conv.out_major and conv.weight_v.shape == (5, spec.kernel * 6)
    np.testing.assert_array_equal(conv.kernel(), kernel)
    np.testing.assert_allclose(conv.unfolded(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(conv(x, False), expected, rtol=1e-5, atol=1e-6)

    up = WNConvTranspose1d(6, 5, geometry.upsample_conv(4), rngs=nnx.Rngs(2))
    fold_weight_norm(up)
    kernel, expected = up.kernel(), up(x)
    store_out_major(up, min_channels=7)  # fewer inputs than that: left as it was
    assert not up.out_major
    store_out_major(up, min_channels=6)
    assert up.out_major and up.weight_v.shape == (4 * 2 * 5, 6)
    np.testing.assert_array_equal(up.kernel(), kernel)
    np.testing.assert_allclose(up(x), expected, rtol=1e-5, atol=1e-6)


def _unfolded_encode_decode(model, audio, padded):
    out = model.encode(jnp.asarray(audio), padded=padded)
    return np.asarray(out.codes), np.asarray(model.decode(out.z, padded=padded))[:, 0]


@pytest.mark.parametrize("padded", [True, False])
def test_chunk_functions_match_the_model(padded):
    model = seeded_model("tiny")
    length = 2 * model.delay + 4096  # unpadded, the stack eats the delay on each side
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 1, length)).astype(np.float32)
    codes, decoded = _unfolded_encode_decode(model, audio, padded)
    graphdef, state = nnx.split(model)
    ours = np.asarray(inference._encode_chunks(graphdef, state, jnp.asarray(audio), None, padded))
    np.testing.assert_array_equal(ours, codes)
    y = np.asarray(inference._decode_chunks(graphdef, state, jnp.asarray(codes), padded))
    np.testing.assert_allclose(y, decoded, atol=1e-5)
    # The model itself is untouched: folding happens on a copy of its state.
    assert all(layer.weight_g.get_value() is not None
               for _, layer in nnx.iter_graph(model) if isinstance(layer, (WNConv1d, WNConvTranspose1d)))


def test_prepared_state_is_reused_per_model():
    model = seeded_model("tiny")
    graphdef, state = nnx.split(model)
    first = inference._chunk_state(graphdef, state)
    assert inference._chunk_state(*nnx.split(model)) is first  # a fresh split of the same arrays
    other = seeded_model("tiny")
    assert inference._chunk_state(*nnx.split(other)) is not first


def test_bfloat16_chunk_functions_run_and_stay_close():
    model = seeded_model("tiny")
    graphdef, state = nnx.split(model)
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 1, 2 * model.delay + 4096)).astype(np.float32)
    audio = jnp.asarray(audio)
    codes32 = inference._encode_chunks(graphdef, state, audio, None, False)
    codes16 = inference._encode_chunks(graphdef, state, audio, None, False, "bfloat16")
    assert codes16.dtype == jnp.int32 and codes16.shape == codes32.shape
    assert float(jnp.mean(codes16[:, 0] == codes32[:, 0])) > 0.5  # the first codebook mostly agrees
    y32 = inference._decode_chunks(graphdef, state, codes32, False)
    y16 = inference._decode_chunks(graphdef, state, codes32, False, "bfloat16")
    assert y16.dtype == jnp.float32 and y16.shape == y32.shape
    assert float(jnp.max(jnp.abs(y16 - y32))) < 0.1
