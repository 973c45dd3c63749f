"""Streaming in real time: compute per second of audio and latency of the per-layer-state streams, against
whole-file encode and decode of the same audio, in one run.

    .venv/bin/python benchmarks/streaming.py [--seconds 10] [--windows 1 2 8] [--batches 1 4 16]
        [--out-dir benchmarks/results]

Full-size 44.1 kHz model with seeded weights (``tests/model_parity.py::seeded_model``), mono speech-like
and music-like audio. Every timed call ends with ``block_until_ready``; each measurement follows a
warm-up call of the same shape (compilation is reported apart).

* whole file: the compiled chunk functions of ``jaxdac.compress`` / ``decompress`` on the whole signal as
  one window (``inference._encode_chunks`` / ``_decode_chunks``, padded: what ``win_duration=None``
  runs), median of 3 runs;
* streams: ``EncoderStream.step`` over the signal in pieces of ``W`` frames, then ``DecoderStream.step``
  over its codes; the sum of the step times per second of audio is the real-time factor (below 1: the
  stream keeps up with live audio), compared with the whole-file time per second of audio. Codes and
  audio are checked against the whole-file results;
* batches: ``B`` independent streams in one step (``W = 1``), 2 s each, encoder and decoder: compute per
  stream-second.

Latency is stated as the streams define it (``StreamingEncoder.latency_samples``,
``StreamingDecoder.latency_frames``) and as measured by ``jaxdac.streaming.live`` (input sample in to
decoded sample out). Writes ``streaming.md`` and ``streaming.csv``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]
from common import machine, write_results  # noqa: E402


def timed(fn, *args):
    import jax

    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start


def stream_all(stream, state, pieces):
    """Every piece through ``stream.step``: (outputs, seconds of each step)."""
    outs, times = [], []
    for piece in pieces:
        (state, out), seconds = timed(stream.step, state, piece)
        outs.append(out)
        times.append(seconds)
    return outs, times


def latency_table(windows) -> list[str]:
    """Stated latency of every released configuration: the encoder's stack waits for its right context
    (``lag`` frames), the decoder's runs ``lag`` samples behind; the windowed streaming this replaced
    waited W + 8 frames to codes and W + 11 frames to audio."""
    import math

    from jaxdac import geometry
    from jaxdac.config import PRESETS, RELEASED

    lines = ["Latency of each released configuration (stated; W frames per piece): from a sample in to its code "
             "frame out (encoder), from a code frame in to the last of its audio out (decoder), in samples and ms; "
             "before = the windowed streaming this replaced.", "",
             "| model | W | encoder lag (frames) | decoder lag (samples) | to codes | to audio | total ms | before ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in RELEASED:
        config = PRESETS[name]
        hop, sr = config.hop_length, config.sample_rate
        enc_lag = geometry.stream_lag(geometry.encoder_convs(config))
        dec_lag = geometry.stream_lag(geometry.decoder_convs(config))
        for w in windows:
            to_codes = (w + enc_lag) * hop
            to_audio = (math.ceil(dec_lag / hop) + w - 1) * hop
            before = ((w + 8) + (w + 11)) * hop
            lines.append(f"| {name} | {w} | {enc_lag} | {dec_lag} | {to_codes} ({to_codes / sr * 1000:.0f} ms) | "
                         f"{to_audio} ({to_audio / sr * 1000:.0f} ms) | {(to_codes + to_audio) / sr * 1000:.0f} | "
                         f"{before / sr * 1000:.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 2, 8])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    import jax.numpy as jnp
    from flax import nnx

    import signals
    from jaxdac import inference
    from jaxdac.streaming import DecoderStream, EncoderStream, StreamingDecoder, StreamingEncoder, live
    from model_parity import seeded_model

    load_before = os.getloadavg()[0]
    model = seeded_model("dac_44khz")
    sr, hop = model.sample_rate, model.hop_length
    n = int(args.seconds * sr) // (8 * hop) * (8 * hop)  # whole pieces at every window
    audio = np.concatenate([signals.speech_like(sr, args.seconds / 2, 1), signals.music_like(sr, args.seconds / 2, 2)])
    audio = np.resize(audio, n).astype(np.float32)[None, None]  # [1, 1, n]
    seconds = n / sr
    graphdef, state = nnx.split(model)
    rows = []

    # Whole file, as win_duration=None codes it.
    _, first_enc = timed(inference._encode_chunks, graphdef, state, jnp.asarray(audio), None, True)
    enc_runs = [timed(inference._encode_chunks, graphdef, state, jnp.asarray(audio), None, True) for _ in range(3)]
    codes = np.asarray(enc_runs[0][0])
    _, first_dec = timed(inference._decode_chunks, graphdef, state, jnp.asarray(codes), True)
    dec_runs = [timed(inference._decode_chunks, graphdef, state, jnp.asarray(codes), True) for _ in range(3)]
    whole_audio = np.asarray(dec_runs[0][0])
    whole_enc = float(np.median([t for _, t in enc_runs])) / seconds
    whole_dec = float(np.median([t for _, t in dec_runs])) / seconds
    rows.append({"what": "whole file", "window_frames": "", "batch": 1, "encode_s_per_s": whole_enc,
                 "decode_s_per_s": whole_dec, "encode_vs_whole": 1.0, "decode_vs_whole": 1.0,
                 "compile_s": first_enc + first_dec - (whole_enc + whole_dec) * seconds, "latency_ms": "",
                 "measured_latency_ms": "", "exact": ""})
    print(rows[-1], flush=True)

    for window in args.windows:
        encoder, decoder = EncoderStream.of(model, window), DecoderStream.of(model, window)
        pieces = audio.reshape(1, 1, -1, window * hop).transpose(2, 0, 1, 3)
        start = time.perf_counter()
        timed(encoder.step, encoder.init(1), pieces[0])
        timed(decoder.step, decoder.init(1), np.zeros((1, model.n_codebooks, window), np.int32))
        compile_s = time.perf_counter() - start
        blocks, enc_t = stream_all(encoder, encoder.init(1), pieces)
        lag = encoder.lag
        streamed = np.concatenate([np.asarray(b.codes) for b in blocks], axis=-1)[..., lag:]
        frames = streamed.shape[-1]
        exact_codes = bool((streamed == codes[..., :frames]).all())
        code_pieces = codes.reshape(1, model.n_codebooks, -1, window).transpose(2, 0, 1, 3)
        blocks, dec_t = stream_all(decoder, decoder.init(1), code_pieces)
        dlag = decoder.lag
        out = np.concatenate([np.asarray(b.audio) for b in blocks], axis=-1)[0, 0, dlag:]
        audio_err = float(np.abs(out - whole_audio[0, : out.shape[-1]]).max())
        run = live(model, audio[0, :, : min(n, 3 * sr)], window)  # measured latency, 3 s
        enc_rtf, dec_rtf = sum(enc_t) / seconds, sum(dec_t) / seconds
        latency_ms = (StreamingEncoder(model, window).latency_samples
                      + StreamingDecoder(model, window).latency_frames * hop) / sr * 1000
        rows.append({"what": "stream", "window_frames": window, "batch": 1, "encode_s_per_s": enc_rtf,
                     "decode_s_per_s": dec_rtf, "encode_vs_whole": enc_rtf / whole_enc,
                     "decode_vs_whole": dec_rtf / whole_dec, "compile_s": compile_s, "latency_ms": latency_ms,
                     "measured_latency_ms": run.latency_samples / sr * 1000,
                     "exact": f"codes {'identical' if exact_codes else 'DIFFER'}, audio within {audio_err:.1e}"})
        print(rows[-1], flush=True)

    encoder, decoder = EncoderStream.of(model, 1), DecoderStream.of(model, 1)
    for batch in args.batches:
        frames = int(2 * sr) // hop  # 2 s of every stream
        pieces = np.repeat(audio, batch, axis=0).reshape(batch, 1, -1, hop).transpose(2, 0, 1, 3)[:frames]
        timed(encoder.step, encoder.init(batch), pieces[0])
        _, times = stream_all(encoder, encoder.init(batch), pieces)
        code_pieces = np.repeat(codes, batch, axis=0)[..., :frames].transpose(2, 0, 1)[..., None]
        timed(decoder.step, decoder.init(batch), code_pieces[0])
        _, dec_times = stream_all(decoder, decoder.init(batch), code_pieces)
        per, dec_per = (sum(t) / (frames * hop / sr) / batch for t in (times, dec_times))
        rows.append({"what": "batched streams", "window_frames": 1, "batch": batch, "encode_s_per_s": per,
                     "decode_s_per_s": dec_per, "encode_vs_whole": per / whole_enc, "decode_vs_whole": dec_per / whole_dec,
                     "compile_s": "", "latency_ms": "", "measured_latency_ms": "", "exact": ""})
        print(rows[-1], flush=True)
    load_after = os.getloadavg()[0]

    def f(value, fmt):
        return format(value, fmt) if isinstance(value, float) else str(value)

    lines = [
        "# Streaming with per-layer state: real-time factor and latency",
        "",
        f"`benchmarks/streaming.py --seconds {args.seconds:g}` on {machine()}; 1-minute load average "
        f"{load_before:.1f} before and {load_after:.1f} after. Full-size 44.1 kHz model, seeded weights, "
        f"{seconds:.1f} s of mono audio. s/s = seconds of computation per second of audio (the real-time "
        "factor: below 1 keeps up with live audio); vs whole = that against whole-file encode / decode of the "
        "same audio (the compiled functions of `compress` / `decompress` with `win_duration=None`). Latency: "
        "stated = encoder `latency_samples` + decoder `latency_frames` frames; measured = most input samples "
        "that arrived after a sample before it came out decoded (`jaxdac.streaming.live`, 3 s).",
        "",
        "| what | W (frames) | streams | encode s/s | vs whole | decode s/s | vs whole | latency stated / measured (ms) | compile (s) | exact |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        latency = f"{f(r['latency_ms'], '.0f')} / {f(r['measured_latency_ms'], '.0f')}" if r["latency_ms"] != "" else ""
        lines.append(f"| {r['what']} | {r['window_frames']} | {r['batch']} | {f(r['encode_s_per_s'], '.3f')} | "
                     f"{f(r['encode_vs_whole'], '.2f')} | {f(r['decode_s_per_s'], '.3f')} | {f(r['decode_vs_whole'], '.2f')} | "
                     f"{latency} | {f(r['compile_s'], '.1f')} | {r['exact']} |")
    lines += ["", *latency_table(args.windows)]
    write_results(args.out_dir, "streaming", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
