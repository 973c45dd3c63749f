"""Vector quantisation: factorised, L2-normalised codebooks in a residual stack (improved RVQGAN).

Inside the package latents are channels-last ``[B, T, D]``; codes are ``[B, N, T]`` as in DAC files.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx, struct

from jaxdac import geometry
from jaxdac.nn.layers import WNConv1d


@struct.dataclass
class Quantized:
    """Result of a quantiser pass (channels-last inside the package).

    ``z``: quantised latent after the output projections ``[B, T, D]``; ``codes`` ``[B, N, T]``;
    ``latents``: the projected encodings before quantisation, concatenated over quantisers
    ``[B, T, N*d]``; losses are scalars (means over the batch).
    """

    z: jax.Array
    codes: jax.Array
    latents: jax.Array
    commitment_loss: jax.Array
    codebook_loss: jax.Array


@struct.dataclass
class CodeLookup:
    """What the original's ``from_codes`` / ``from_latents`` return, named and channels-first.

    ``z``: quantised latent ``[B, D, T]``; ``z_p``: the chosen codebook vectors in the low-dimensional
    codebook space, concatenated over quantisers ``[B, N*d, T]``; ``codes`` ``[B, N, T]``.
    """

    z: jax.Array
    z_p: jax.Array
    codes: jax.Array


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
    # torch.nn.functional.normalize: x / max(||x||, 1e-12).
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
    return x / jnp.maximum(norm, 1e-12)


class Codebook(nnx.Module):
    """The code vectors, ``weight [codebook_size, codebook_dim]`` (named as the original's nn.Embedding)."""

    def __init__(self, size: int, dim: int, *, rngs: nnx.Rngs):
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (size, dim), jnp.float32))


class VectorQuantize(nnx.Module):
    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int, *, rngs: nnx.Rngs):
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.in_proj = WNConv1d(input_dim, codebook_dim, geometry.pointwise_conv(), rngs=rngs)
        self.out_proj = WNConv1d(codebook_dim, input_dim, geometry.pointwise_conv(), rngs=rngs)
        self.codebook = Codebook(codebook_size, codebook_dim, rngs=rngs)

    def nearest(self, latents: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Nearest code by cosine similarity. ``latents [B, T, d]`` -> (code vectors ``[B, T, d]``, ids ``[B, T]``).

        Both sides are L2-normalised, so the Euclidean distance ranks like cosine similarity. The
        distance is written as the original writes it (|e|^2 - 2 e.c + |c|^2) so that float rounding,
        and therefore the choice between near-tied codes, follows it.
        """
        codebook = self.codebook.weight[...]  # [K, d]
        e = l2_normalize(latents)
        c = l2_normalize(codebook)
        dist = (
            jnp.sum(jnp.square(e), axis=-1, keepdims=True)
            - 2 * jnp.einsum("btd,kd->btk", e, c, precision=jax.lax.Precision.HIGHEST)
            + jnp.sum(jnp.square(c), axis=-1)
        )
        ids = jnp.argmax(-dist, axis=-1)
        return codebook[ids], ids  # the raw (unnormalised) code vectors, as the original decodes

    def __call__(self, z: jax.Array):  # [B, T, D]
        z_e = self.in_proj(z)  # [B, T, d]: factorised low-dimensional projection
        z_q, ids = self.nearest(z_e)
        sg = jax.lax.stop_gradient
        commitment = jnp.mean(jnp.square(z_e - sg(z_q)), axis=(1, 2))  # [B]: pulls the encoder to codes
        codebook = jnp.mean(jnp.square(z_q - sg(z_e)), axis=(1, 2))  # [B]: pulls codes to the encoder
        # Straight-through estimator: forward value z_q, gradient of the identity back into z_e.
        z_q = z_e + sg(z_q - z_e)
        return self.out_proj(z_q), commitment, codebook, ids, z_e

    def embed(self, ids: jax.Array) -> jax.Array:  # [B, T] -> [B, T, d]
        return self.codebook.weight[...][ids]


def dropout_counts(key: jax.Array | None, batch: int, n_codebooks: int, p: float) -> jax.Array:
    """Quantiser dropout (improved RVQGAN): how many codebooks each batch item keeps in training, ``[B]``.

    As the original: the first ``int(batch * p)`` items keep a number drawn uniformly from
    ``1..n_codebooks``, the others keep all (``n_codebooks + 1``, so that ``i < keep`` holds for every
    codebook index ``i``). Codebooks past an item's count still run (their codes are returned) but add
    nothing to its ``z`` and nothing to its commitment and codebook losses.
    """
    keep = jnp.full((batch,), n_codebooks + 1)
    n_dropout = int(batch * p)
    if n_dropout:
        if key is None:
            raise ValueError("quantizer dropout in training needs a PRNG key")
        drawn = jax.random.randint(key, (batch,), 1, n_codebooks + 1)
        keep = jnp.where(jnp.arange(batch) < n_dropout, drawn, keep)
    return keep


class ResidualVectorQuantize(nnx.Module):
    """Residual VQ (SoundStream): each quantiser codes what the previous ones left."""

    def __init__(
        self,
        input_dim: int,
        n_codebooks: int,
        codebook_size: int,
        codebook_dims: tuple[int, ...],
        quantizer_dropout: float = 0.0,
        *,
        rngs: nnx.Rngs,
    ):
        self.n_codebooks = n_codebooks
        self.codebook_dims = tuple(codebook_dims)
        self.quantizer_dropout = quantizer_dropout
        self.quantizers = nnx.List(
            [VectorQuantize(input_dim, codebook_size, d, rngs=rngs) for d in self.codebook_dims]
        )

    def __call__(
        self, z: jax.Array, n_quantizers: int | None = None, *, train: bool = False, key: jax.Array | None = None
    ) -> Quantized:
        """Quantise ``z [B, T, D]``.

        Inference uses the first ``n_quantizers`` (all by default) and returns that many codes.
        Training (``train=True``) runs every quantiser; with ``quantizer_dropout`` p > 0 the first
        ``int(B * p)`` items of the batch keep a random 1..N quantisers (drawn from ``key``) and the
        rest keep all of them, exactly as the original. ``n_quantizers`` must then be None: the
        original ignores it silently in training, here it is an error.
        """
        batch = z.shape[0]
        if train:
            if n_quantizers is not None:
                raise ValueError("n_quantizers is not used in training (quantizer dropout decides)")
            keep = dropout_counts(key, batch, self.n_codebooks, self.quantizer_dropout)
            active = self.quantizers
        else:
            n = self.n_codebooks if n_quantizers is None else n_quantizers
            if not 1 <= n <= self.n_codebooks:
                raise ValueError(f"n_quantizers must be in 1..{self.n_codebooks}, got {n}")
            keep = None
            active = self.quantizers[:n]

        z_q = jnp.zeros_like(z)
        residual = z
        commitment = codebook = jnp.zeros((), z.dtype)
        codes, latents = [], []
        for i, quantizer in enumerate(active):
            z_q_i, commitment_i, codebook_i, ids_i, z_e_i = quantizer(residual)
            mask = jnp.ones((batch,), z.dtype) if keep is None else (i < keep).astype(z.dtype)
            z_q = z_q + z_q_i * mask[:, None, None]
            residual = residual - z_q_i
            commitment = commitment + jnp.mean(commitment_i * mask)
            codebook = codebook + jnp.mean(codebook_i * mask)
            codes.append(ids_i)
            latents.append(z_e_i)
        return Quantized(
            z=z_q,
            codes=jnp.stack(codes, axis=1),
            latents=jnp.concatenate(latents, axis=-1),
            commitment_loss=commitment,
            codebook_loss=codebook,
        )

    def _lookup(self, codes: jax.Array) -> tuple[jax.Array, jax.Array]:  # [B, N, T] -> z [B, T, D], z_p [B, T, N*d]
        n = codes.shape[1]
        if n > self.n_codebooks:
            raise ValueError(f"{n} codebooks given, the model has {self.n_codebooks}")
        vectors = [self.quantizers[i].embed(codes[:, i]) for i in range(n)]
        z = sum(self.quantizers[i].out_proj(v) for i, v in enumerate(vectors))
        return z, jnp.concatenate(vectors, axis=-1)

    def from_codes(self, codes: jax.Array) -> CodeLookup:
        """Codes ``[B, N, T]`` (N <= n_codebooks) -> quantised latent. Channels-first, as the original."""
        z, z_p = self._lookup(codes)
        return CodeLookup(z=z.transpose(0, 2, 1), z_p=z_p.transpose(0, 2, 1), codes=codes)

    def from_latents(self, latents: jax.Array) -> CodeLookup:
        """Projected latents ``[B, N*d, T]`` (channels-first) -> quantised latent, as the original:
        uses as many whole quantisers as the channel count covers."""
        latents = latents.transpose(0, 2, 1)  # [B, T, N*d]
        offsets = [0]
        for d in self.codebook_dims:
            offsets.append(offsets[-1] + d)
        n = max(i for i, o in enumerate(offsets) if o <= latents.shape[-1])
        if n == 0:
            raise ValueError(f"latents have {latents.shape[-1]} channels, fewer than one codebook's {offsets[1]}")
        ids = [self.quantizers[i].nearest(latents[..., offsets[i] : offsets[i + 1]])[1] for i in range(n)]
        codes = jnp.stack(ids, axis=1)
        z, z_p = self._lookup(codes)
        return CodeLookup(z=z.transpose(0, 2, 1), z_p=z_p.transpose(0, 2, 1), codes=codes)
