"""Neural network modules (Flax NNX): layers, the codec and the quantiser."""

from jaxdac.nn.codec import DAC, Decoder, Encoder, EncodeOutput, ForwardOutput
from jaxdac.nn.quantize import CodeLookup, Quantized, ResidualVectorQuantize, VectorQuantize

__all__ = [
    "DAC", "Decoder", "Encoder", "EncodeOutput", "ForwardOutput",
    "CodeLookup", "Quantized", "ResidualVectorQuantize", "VectorQuantize",
]
