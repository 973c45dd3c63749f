"""encode / decode run compiled: a loop over same-shaped inputs traces the layers once."""

import numpy as np

from jaxdac.nn import codec
from model_parity import seeded_model


def test_encode_decode_trace_once_per_shape(monkeypatch):
    model = seeded_model("tiny")
    calls = {"encoder": 0, "decoder": 0}
    encoder_call, decoder_call = codec.Encoder.__call__, codec.Decoder.__call__

    def counting(name, fn):
        def wrapper(self, *args, **kwargs):
            calls[name] += 1  # runs only while JAX traces, never when a compiled call is replayed
            return fn(self, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(codec.Encoder, "__call__", counting("encoder", encoder_call))
    monkeypatch.setattr(codec.Decoder, "__call__", counting("decoder", decoder_call))
    rng = np.random.default_rng(0)
    for _ in range(3):
        audio = rng.uniform(-0.5, 0.5, (1, 1, 12345)).astype(np.float32)  # a length no other test uses
        out = model.encode(audio)
        model.decode(out.z)
    assert calls == {"encoder": 1, "decoder": 1}
    model.encode(audio[..., :6000])  # a new shape traces again
    assert calls["encoder"] == 2
