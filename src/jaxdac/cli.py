"""The ``jaxdac`` command line.

Every error a user can cause ends in one line on stderr (``jaxdac: error: ...``) and a non-zero exit
status, never a traceback; outputs are written atomically and existing files are kept unless
``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MODEL_TYPES = ("44khz", "24khz", "16khz")
BITRATES = ("8kbps", "16kbps")


class UserError(Exception):
    """An error caused by the input; printed as one line."""


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-type", default="44khz", choices=MODEL_TYPES, help="released model (default 44khz)")
    p.add_argument("--model-bitrate", default="8kbps", choices=BITRATES, help="released model bitrate (default 8kbps)")
    p.add_argument("--model-tag", default="latest", help="release tag (default latest)")
    p.add_argument("--weights", type=Path, help="local weights: an original .pth or a jaxdac .safetensors file")


def cmd_download(args) -> int:
    from jaxdac.weights.pretrained import download

    path = download(args.model_type, args.model_bitrate, args.model_tag, force=args.force)
    print(path)
    return 0


def cmd_convert(args) -> int:
    from jaxdac.weights import convert
    from jaxdac.weights.load import load_checkpoint

    src, dst = args.input, args.output
    if dst.suffix != ".safetensors":
        dst = dst.with_name(dst.name + ".safetensors")
    if dst.exists() and not args.overwrite:
        raise UserError(f"{dst} exists (pass --overwrite to replace it)")
    model = load_checkpoint(src)
    convert.save(model, dst, overwrite=args.overwrite)
    n = sum(v.size for v in convert.to_state_dict(model).values())
    print(f"wrote {dst}: {model.sample_rate} Hz, {model.n_codebooks} codebooks, {n:,} parameters")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxdac", description="Descript Audio Codec in JAX.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("download", help="download released weights into the cache and print the path")
    _add_model_options(p)
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("convert", help="convert an original .pth checkpoint to jaxdac .safetensors (no torch)")
    p.add_argument("input", type=Path, help="original checkpoint (.pth)")
    p.add_argument("output", type=Path, help="output file (.safetensors is appended if missing)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=cmd_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("jaxdac: interrupted", file=sys.stderr)
        return 130
    except (UserError, OSError, ValueError, RuntimeError) as e:
        message = str(e) or type(e).__name__
        if isinstance(e, OSError) and e.filename and str(e.filename) not in message:
            message = f"{e.filename}: {message}"
        print(f"jaxdac: error: {message.splitlines()[0]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
