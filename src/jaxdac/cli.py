"""The ``jaxdac`` command line.

    jaxdac encode INPUT... --output DIR    audio files or folders -> .dac files (or --format npy / shards):
                                           every file through one compiled program (jaxdac.tokenize)
    jaxdac decode INPUT... --output DIR    .dac files or folders -> audio files (.wav unless --format)
    jaxdac info FILE.dac...                what a DAC file holds
    jaxdac stream-demo IN OUT              a file coded as a live stream: latency and real-time factor
    jaxdac download / convert              released weights; original .pth -> .safetensors

Every error a user can cause ends in one line on stderr (``jaxdac: error: ...``) and a non-zero exit
status, never a traceback. ``encode`` and ``decode`` check everything they can before doing any work
(inputs exist and open, outputs are free and writable, the files fit the model), write each output
atomically, and keep existing files unless ``--overwrite`` is given, so a failure leaves no partial
output. A file named on the command line must pass these checks; files found by searching a folder
that cannot be read (or do not fit the model) are reported one line each and skipped, the rest are
written, and a summary line ends the run with exit status 1. ``--strict`` treats folder files as named
ones: the first bad file stops the run before any work.

This module imports only the standard library; JAX and the model load when a command runs, so
``--help`` and a mistyped option answer at once.

``encode`` and ``decode`` keep XLA's compiled programs in a persistent cache, so the second run of a
command starts without recompiling: ``$JAXDAC_COMPILATION_CACHE`` (default ``~/.cache/jaxdac/xla``, or
``$JAXDAC_CACHE_DIR/xla``); ``JAXDAC_COMPILATION_CACHE=off`` disables it. Importing the library never
touches this setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import tempfile
from pathlib import Path

MODEL_TYPES = ("44khz", "24khz", "16khz")
BITRATES = ("8kbps", "16kbps")
DAC_SUFFIX = ".dac"
_CACHE_OFF = ("off", "0", "false", "no", "none")


class UserError(Exception):
    """An error caused by the input; printed as one line."""


class _Parser(argparse.ArgumentParser):
    # argparse's own errors (a bad option) follow the same one-line contract as ours.
    def error(self, message):
        self.exit(2, f"jaxdac: error: {message} (see {self.prog} --help)\n")


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0 or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _add_model_options(p: argparse.ArgumentParser, weights: bool = True) -> None:
    # Defaults are None so that a flag given next to --weights can be checked against those weights.
    p.add_argument("--model-type", choices=MODEL_TYPES,
                   help="released model (default 44khz); with --weights, checked against the weights")
    p.add_argument("--model-bitrate", choices=BITRATES,
                   help="released model bitrate (default 8kbps); with --weights, checked against the weights")
    p.add_argument("--model-tag", help="release tag (default latest); not with --weights")
    if weights:
        p.add_argument("--weights", type=Path, help="local weights: an original .pth or a jaxdac .safetensors file")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (created if missing)")
    _add_model_options(p)
    p.add_argument("--win-duration", type=_positive(float), default=5.0, metavar="SECONDS",
                   help="audio is coded in windows of this many seconds, which bounds memory (default 5.0)")
    p.add_argument("--chunk-batch", type=_positive(int), metavar="N",
                   help="windows coded per compiled call: same result, more memory, often faster (default 1; "
                   "seamless encode: one per local device, a multiple of their number)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="precision of the convolutions; bfloat16 trades a little quality for speed on hardware "
                        "with fast bfloat16 (default float32)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--strict", action="store_true",
                   help="stop before any work if any input, also one found in a folder, cannot be read or does "
                   "not fit the model (default: such folder files are reported and skipped)")


# ---------------------------------------------------------------------------------------------------
# Finding inputs and planning outputs


@dataclasses.dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    named: bool = True  # named on the command line (False: found in a folder)


def _find(inputs: list[Path], suffixes, what: str) -> list[tuple[Path, Path, bool]]:
    """``(file, path relative to the output folder, named)`` for every input. A file stands for itself
    (its name; ``named``); a folder for every file under it with one of ``suffixes``, at its path inside
    the folder. Hidden files and folders (names starting with a dot) are skipped."""
    found = []
    for given in inputs:
        if given.is_dir():
            files = sorted(
                p for p in given.rglob("*")
                if p.suffix.lower() in suffixes and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(given).parts)
            )
            if not files:
                raise UserError(f"no {what} files under {given} (looked for {', '.join(sorted(suffixes))})")
            found.extend((p, p.relative_to(given), False) for p in files)
        elif given.exists():
            found.append((given, Path(given.name), True))
        else:
            raise UserError(f"{given}: no such file or directory")
    return found


def _plan(inputs: list[Path], output: Path, suffixes, what: str, out_suffix: str, overwrite: bool) -> list[Job]:
    """Jobs mirroring the inputs under ``output``; fails before any work if an output is taken (without
    ``overwrite``), two inputs map to one output, or an output folder cannot be written."""
    jobs = [Job(src, output / rel.with_suffix(out_suffix), named) for src, rel, named in _find(inputs, suffixes, what)]
    by_target: dict[Path, Path] = {}
    for job in jobs:
        key = Path(os.path.abspath(job.target))
        if key in by_target:
            raise UserError(f"{by_target[key]} and {job.source} would both be written to {job.target}")
        by_target[key] = job.source
        if job.target.is_dir():
            raise UserError(f"{job.target} is a directory; cannot write the output for {job.source} there")
        if job.target.exists() and not overwrite:
            raise UserError(f"{job.target} exists (pass --overwrite to replace it)")
    checked: set[Path] = set()
    for job in jobs:
        _check_writable(job.target.parent, checked)
    return jobs


def _check_writable(folder: Path, checked: set[Path]) -> None:
    # The nearest existing ancestor must be a folder we can create files in (tried for real: permission
    # bits say nothing on read-only file systems or to root).
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing in checked:
        return
    if not existing.is_dir():
        raise UserError(f"cannot write to {folder}: {existing} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".jaxdac-"):
            pass
    except OSError as e:
        raise UserError(f"cannot write to {folder}: {e.strerror or e}") from None
    checked.add(existing)


# ---------------------------------------------------------------------------------------------------
# Running


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at ``$JAXDAC_COMPILATION_CACHE`` (default
    ``<jaxdac cache>/xla``) and cache every compiled program, however quick to compile (CPU compiles
    are below JAX's default one-second threshold). Returns the folder, or None if disabled."""
    setting = os.environ.get("JAXDAC_COMPILATION_CACHE", "").strip()
    if setting.lower() in _CACHE_OFF:
        return None
    import jax

    if setting:
        path = Path(setting).expanduser()
    elif jax.config.jax_compilation_cache_dir:  # the user configured JAX's own cache: keep it
        path = Path(jax.config.jax_compilation_cache_dir)
    else:
        from jaxdac.weights.pretrained import default_cache_dir

        path = default_cache_dir() / "xla"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return None  # only an optimisation: run without it rather than warn on every write
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size limit
    return path


def _load(args):
    """The model the options name: a release, or ``--weights`` checked against any release flags given."""
    from jaxdac.weights.load import check_release, load_model

    if args.weights is not None and args.model_tag is not None:
        raise UserError(f"--model-tag {args.model_tag} names a release; it cannot be combined with --weights")
    enable_compilation_cache()
    if args.weights is None:
        return load_model(args.model_type or "44khz", args.model_bitrate or "8kbps", args.model_tag or "latest")
    model = load_model(path=args.weights)
    try:
        check_release(model.config, args.model_type, args.model_bitrate, name=str(args.weights))
    except ValueError as e:
        flags = " ".join(f"{flag} {value}" for flag, value in
                         (("--model-type", args.model_type), ("--model-bitrate", args.model_bitrate)) if value)
        raise UserError(f"{flags} does not match --weights: {e}") from None
    return model


def _progress(jobs: list[Job], desc: str):
    from tqdm import tqdm

    return tqdm(jobs, desc=desc, unit="file", disable=not _interactive(), dynamic_ncols=True)


def _interactive() -> bool:
    return sys.stderr.isatty()


def _done(path: Path) -> None:
    from tqdm import tqdm

    tqdm.write(str(path), file=sys.stdout)


def _message(e: BaseException) -> str:
    """One line saying what went wrong, naming the file where the exception knows it."""
    message = str(e) or type(e).__name__
    if isinstance(e, OSError) and e.filename and str(e.filename) not in message:
        message = f"{e.filename}: {message}"
    return message.splitlines()[0]


# Failures of one input (unreadable, corrupt, not fitting the model); anything else stops the run.
_FILE_ERRORS = (UserError, OSError, ValueError, RuntimeError)


class _Skips:
    """Inputs found in folders that failed: each reported on stderr as it happens, counted for the summary."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.count = 0

    def check(self, job: Job, fn) -> bool:
        """Run ``fn()`` for ``job``: True if it succeeded, False if it failed and the job is skipped. A
        failure of a named input (or any input with ``--strict``) is raised."""
        try:
            fn()
            return True
        except _FILE_ERRORS as e:
            if job.named or self.strict:
                raise
            message = _message(e)
            if str(job.source) not in message:
                message = f"{job.source}: {message}"
            from tqdm import tqdm

            tqdm.write(f"jaxdac: skipped: {message}", file=sys.stderr)
            self.count += 1
            return False

    def summary(self, total: int, what: str) -> int:
        """Exit status of the run: 0, or 1 after one line counting the skipped files."""
        if not self.count:
            return 0
        print(f"jaxdac: error: {self.count} of {total} {what} files skipped (listed above); "
              f"{total - self.count} written", file=sys.stderr)
        return 1


def window_warning(model, win_duration: float, context, kind: str) -> str | None:
    """A one-line warning if ``win_duration`` gives seamless windows so short that the context coded on
    both sides of each (``context`` frames) dominates the work; None otherwise.

    A window of ``w`` frames costs ``(w + left + right) / w`` times its share of whole-file coding, so
    below ``4 (left + right)`` frames the context adds more than a quarter (0.75 s encoding, 1.03 s
    decoding with the 44.1 kHz model, rounded up). The result is the same at any window; only the time
    changes.
    """
    frames = max(1, round(win_duration * model.sample_rate / model.hop_length))  # as inference chooses
    extra = context.left + context.right
    efficient = 4 * extra
    if frames >= efficient:
        return None
    shortest = math.ceil(100 * efficient * model.hop_length / model.sample_rate) / 100
    cost = (frames + extra) / frames
    return (f"jaxdac: warning: --win-duration {win_duration:g} gives {kind} windows of {frames} frame"
            f"{'s' if frames != 1 else ''}, each with "
            f"{extra} frames of context: about {cost:.1f}x the work of long windows for the same result; "
            f"use --win-duration {shortest:.2f} or more")


def cmd_encode(args) -> int:
    if args.chunking == "seamless":
        return _tokenize(args)
    if args.format != "dac" or args.resume:
        raise UserError("--format npy or shards and --resume need --chunking seamless (legacy files are coded one by one)")
    from jaxdac import geometry
    from jaxdac.inference import compress_file
    from jaxdac.io.audio import audio_info, audio_suffixes
    from jaxdac.io.dacfile import write_dac_file

    jobs = _plan(args.inputs, args.output, audio_suffixes(), "audio", DAC_SUFFIX, args.overwrite)
    total, skips = len(jobs), _Skips(args.strict)
    # Every input opens and has samples (from the header; AudioFileError otherwise), before any work.
    jobs = [job for job in jobs if skips.check(job, lambda: audio_info(job.source))]
    if not jobs:
        return skips.summary(total, "audio")
    model = _load(args)
    if args.n_quantizers is not None and args.n_quantizers > model.n_codebooks:
        raise UserError(f"--n-quantizers {args.n_quantizers}: the model has only {model.n_codebooks} codebooks")
    _, hop = geometry.chunk_plan(model.config, model.sample_rate, args.win_duration)
    if args.chunking == "legacy" and hop <= 0:
        shortest = (2 * model.delay + model.hop_length) / model.sample_rate
        raise UserError(f"--win-duration {args.win_duration} is shorter than this model's context; use at least {shortest:.2f}")
    if args.chunking == "seamless":
        warning = window_warning(model, args.win_duration, geometry.encoder_context(model.config), "encoder")
        if warning:
            print(warning, file=sys.stderr)

    for job in _progress(jobs, "encode"):
        def work(job=job):
            dac_file = compress_file(
                model, job.source, win_duration=args.win_duration, n_quantizers=args.n_quantizers,
                chunking=args.chunking, chunk_batch=args.chunk_batch or 1, dtype=args.dtype, progress=_interactive(),
            )
            job.target.parent.mkdir(parents=True, exist_ok=True)
            _done(write_dac_file(dac_file, job.target, overwrite=args.overwrite))

        skips.check(job, work)
    return skips.summary(total, "audio")


def _tokenize(args) -> int:
    """Seamless encode: every file through one compiled program (jaxdac.tokenize), packed in batches,
    on every local device and, launched as several processes, every host."""
    from jaxdac import geometry, tokenize
    from jaxdac.distributed import initialize_distributed
    from jaxdac.io.audio import audio_info, audio_suffixes

    if args.format == "shards":
        found = _find(args.inputs, audio_suffixes(), "audio")
        sources = [tokenize.Source(src, rel.as_posix(), named or args.strict) for src, rel, named in found]
        first: dict[str, Path] = {}
        for src, rel, _ in found:
            if first.setdefault(rel.as_posix(), src) != src:
                raise UserError(f"{first[rel.as_posix()]} and {src} would both be indexed as {rel.as_posix()}")
    else:
        jobs = _plan(args.inputs, args.output, audio_suffixes(), "audio", f".{args.format}",
                     args.overwrite or args.resume)
        sources = [tokenize.Source(job.source, job.target.relative_to(args.output).as_posix(), job.named or args.strict)
                   for job in jobs]
    for source in sources:  # named files (every file with --strict) must open, before any work
        if source.required:
            audio_info(source.path)
    initialize_distributed()
    model = _load(args)
    if args.n_quantizers is not None and args.n_quantizers > model.n_codebooks:
        raise UserError(f"--n-quantizers {args.n_quantizers}: the model has only {model.n_codebooks} codebooks")
    warning = window_warning(model, args.win_duration, geometry.encoder_context(model.config), "encoder")
    if warning:
        print(warning, file=sys.stderr)

    def skipped(name, reason):
        from tqdm import tqdm

        tqdm.write(f"jaxdac: skipped: {reason}", file=sys.stderr)

    summary = tokenize.tokenize_files(
        model, sources, args.output, format=args.format, win_duration=args.win_duration, rows=args.chunk_batch,
        n_quantizers=args.n_quantizers, dtype=args.dtype, workers=args.workers, resume=args.resume,
        overwrite=args.overwrite, shard_size=round(args.shard_size * 2**20), progress=_interactive(), on_written=_done,
        on_skipped=skipped,
    )
    import jax

    if jax.process_index() != 0:
        return 0
    if _interactive():
        print(summary.line(), file=sys.stderr)
    if not summary.skipped:
        return 0
    print(f"jaxdac: error: {len(summary.skipped)} of {summary.files} audio files skipped (listed above); "
          f"{summary.coded} written", file=sys.stderr)
    return 1


def cmd_decode(args) -> int:
    from jaxdac import geometry
    from jaxdac.inference import decompress_file
    from jaxdac.io.audio import check_encoding, resolve_format, suffix_for_format
    from jaxdac.io.dacfile import read_dac_file

    fmt, subtype = resolve_format(format=args.format or "WAV", subtype=args.subtype)
    jobs = _plan(args.inputs, args.output, {DAC_SUFFIX}, "DAC", suffix_for_format(fmt), args.overwrite)
    total, skips = len(jobs), _Skips(args.strict)

    def readable(job):  # corrupt, truncated, batched or unencodable files fail here, before the model loads
        dac_file = read_dac_file(job.source)
        if dac_file.batch_size != 1:
            raise UserError(
                f"{job.source} holds {dac_file.batch_size} items; decode writes one audio file per DAC file "
                "(use jaxdac.decompress for batches)"
            )
        check_encoding(fmt, subtype, dac_file.sample_rate, dac_file.channels, name=job.target)

    jobs = [job for job in jobs if skips.check(job, lambda: readable(job))]
    if not jobs:
        return skips.summary(total, "DAC")
    model = _load(args)

    unchunked = []  # files decoded in seamless windows of --win-duration (chunked ones go chunk by chunk)

    def fits(job):
        dac_file = read_dac_file(job.source)
        try:
            dac_file.validate_for(model.config)
        except ValueError as e:
            raise UserError(f"{job.source}: {e}") from None
        if dac_file.padding:
            unchunked.append(job)

    jobs = [job for job in jobs if skips.check(job, lambda: fits(job))]
    warning = window_warning(model, args.win_duration, geometry.decoder_context(model.config), "decoder")
    if warning and unchunked:
        print(warning, file=sys.stderr)

    for job in _progress(jobs, "decode"):
        def work(job=job):
            dac_file = read_dac_file(job.source)
            job.target.parent.mkdir(parents=True, exist_ok=True)
            _done(decompress_file(model, dac_file, job.target, format=fmt, subtype=subtype, overwrite=args.overwrite,
                                  win_duration=args.win_duration, chunk_batch=args.chunk_batch or 1, dtype=args.dtype,
                                  progress=_interactive()))

        skips.check(job, work)
    return skips.summary(total, "DAC")


def describe(dac_file, codebook_size: int = 1024) -> list[tuple[str, str]]:
    """``(field, value)`` lines describing a DAC file, for ``jaxdac info``."""
    seconds = dac_file.original_length / dac_file.sample_rate
    chunked = not dac_file.padding
    top = int(dac_file.codes.max())
    bits = math.log2(codebook_size)
    note = f"{bits:g} bits per code, assuming {codebook_size}-entry codebooks as in the released models; not recorded in the file"
    if top >= codebook_size:
        bits = float(math.ceil(math.log2(top + 1)))
        note = f"{bits:g} bits per code: the codes reach {top}, beyond {codebook_size}-entry codebooks"
    rows = dac_file.codes.shape[0]
    if seconds > 0:
        per_row = dac_file.n_codebooks * dac_file.frames * bits / seconds / 1000
        bitrate = f"{per_row * rows:.2f} kbit/s ({per_row:.2f} per channel; {note})"
    else:
        bitrate = "n/a (no audio)"
    lines = [
        ("model", "not recorded (DAC 1.0.0 files do not say which model wrote them)"),
        ("format", f"DAC {dac_file.dac_version}"),
        ("sample rate", f"{dac_file.sample_rate} Hz (of the original audio; decoding returns to it)"),
        ("channels", str(dac_file.channels)),
    ]
    if dac_file.batch_size != 1:
        lines.append(("items", str(dac_file.batch_size)))
    lines += [
        ("duration", f"{seconds:.3f} s ({dac_file.original_length} samples)"),
        ("codebooks", str(dac_file.n_codebooks)),
        ("frames", f"{dac_file.frames} per channel"),
        ("chunk length", f"{dac_file.chunk_length} frames"),
        ("padding", "no: chunked, windows coded separately with unpadded convolutions" if chunked
         else "yes: unchunked, codes of the whole signal with padded convolutions"),
        ("bitrate", bitrate),
    ]
    return lines


def cmd_info(args) -> int:
    from jaxdac.io.dacfile import read_dac_file

    files = [(path, read_dac_file(path)) for path, _, _ in _find(args.inputs, {DAC_SUFFIX}, "DAC")]
    for i, (path, dac_file) in enumerate(files):
        if i:
            print()
        print(path)
        for field, value in describe(dac_file, args.codebook_size):
            print(f"  {field + ':':<14}{value}")
    return 0


def cmd_download(args) -> int:
    from jaxdac.weights.pretrained import download

    path = download(args.model_type or "44khz", args.model_bitrate or "8kbps", args.model_tag or "latest", force=args.force)
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


def cmd_stream_demo(args) -> int:
    """Code a file as a live input: pieces of ``--window-frames`` frames through the streaming encoder and
    decoder (jaxdac.streaming), then print the latency and how fast it ran against real time."""
    import numpy as np

    from jaxdac.io.audio import read_audio, write_audio
    from jaxdac.streaming import live

    if args.output.exists() and not args.overwrite:
        raise UserError(f"{args.output} exists (pass --overwrite to replace it)")
    _check_writable(args.output.parent.resolve(), set())
    audio, sample_rate = read_audio(args.input)
    model = _load(args)
    if sample_rate != model.sample_rate:
        from jaxdac.dsp import resample

        audio = np.asarray(resample(audio, sample_rate, model.sample_rate))
    run = live(model, audio, args.window_frames, args.dtype, progress=_interactive())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_audio(args.output, run.audio, model.sample_rate, overwrite=args.overwrite)
    ms = 1000 / model.sample_rate
    piece_ms = run.piece_seconds * 1000
    enc, dec = (np.asarray(t) * 1000 for t in (run.encode_seconds, run.decode_seconds))
    print(f"{args.output}: {audio.shape[1] / model.sample_rate:.2f} s, {audio.shape[0]} channel(s) at "
          f"{model.sample_rate} Hz, pieces of {args.window_frames} frame(s) ({piece_ms:.1f} ms)")
    print(f"latency: {run.latency_samples} samples ({run.latency_samples * ms:.1f} ms) from a sample in to it out, "
          "measured; the stacks wait for their right context, the rest is the piece")
    print(f"real-time factor (compute time / audio time; below 1 keeps up): encode {run.real_time_factor('encode'):.2f}, "
          f"decode {run.real_time_factor('decode'):.2f}, both {run.real_time_factor():.2f}")
    print(f"per piece: encode {np.median(enc):.1f} ms (95th percentile {np.percentile(enc, 95):.1f}), decode "
          f"{np.median(dec):.1f} ms ({np.percentile(dec, 95):.1f}); compiling first: {run.compile_seconds:.1f} s")
    return 0


def cmd_evaluate(args) -> int:
    from jaxdac.evaluate import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxdac", description="Descript Audio Codec in JAX.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "encode", help="compress audio files to .dac files",
        description="Compress audio files (wav, flac, ogg, mp3, ...) to DAC files. A folder input is searched "
        "recursively and its tree is mirrored under --output; a file input is written directly into it.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="audio files or folders")
    _add_run_options(p)
    p.add_argument("--n-quantizers", type=_positive(int), metavar="N",
                   help="keep the first N codebooks (lower bitrate); default all")
    p.add_argument("--chunking", choices=("seamless", "legacy"), default="seamless",
                   help="seamless (default): windows read enough context that the codes equal coding the whole "
                   "file at once, stored as an ordinary unchunked DAC file; legacy: the original's overlapping "
                   "windows (codes depend on the window), as the original's chunked files")
    p.add_argument("--format", choices=("dac", "npy", "shards"), default="dac",
                   help="dac (default): a .dac file per input; npy: a .npy file of codes per input (uint16 "
                   "[channels, codebooks, frames]); shards: a few large .npy files of codes with index.npy and "
                   "manifest.json, for language-model training (seamless only)")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted run: keep the outputs it completed (files; shards with their marker) "
                   "and code the rest")
    p.add_argument("--shard-size", type=_positive(float), default=256.0, metavar="MB",
                   help="--format shards: megabytes of codes per shard, estimated from the file headers (default 256)")
    p.add_argument("--workers", type=_positive(int), metavar="N",
                   help="threads reading and resampling files ahead of the model (default min(4, CPUs))")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser(
        "decode", help="decompress .dac files to audio files",
        description="Decompress DAC files to audio at their original sample rate and length. A folder input "
        "is searched recursively for .dac files and its tree is mirrored under --output.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help=".dac files or folders")
    _add_run_options(p)
    p.add_argument("--format", type=str.upper, help="audio format to write: WAV (default), FLAC, OGG, MP3, ...")
    p.add_argument("--subtype", type=str.upper,
                   help="sample type, e.g. PCM_16 (the default for WAV and FLAC), PCM_24, FLOAT")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("info", help="describe .dac files", description="Print what DAC files hold.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="FILE", help=".dac files or folders")
    p.add_argument("--codebook-size", type=_positive(int), default=1024, metavar="N",
                   help="codebook size used for the bitrate (files do not record it; default 1024)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("download", help="download released weights into the cache and print the path")
    _add_model_options(p, weights=False)
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("convert", help="convert an original .pth checkpoint to jaxdac .safetensors (no torch)")
    p.add_argument("input", type=Path, help="original checkpoint (.pth)")
    p.add_argument("output", type=Path, help="output file (.safetensors is appended if missing)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "stream-demo", help="code an audio file as a live stream; print latency and real-time factor",
        description="Feed an audio file through the streaming encoder and decoder in pieces of --window-frames "
        "frames, as live input arrives, write the decoded audio and print the measured latency and how the "
        "computation compares with real time. The input is resampled to the model's rate; its loudness is not "
        "normalised (a stream cannot measure a whole signal's loudness before it ends).",
    )
    p.add_argument("input", type=Path, help="audio file")
    p.add_argument("output", type=Path, help="decoded audio file to write (.wav, .flac, ...)")
    _add_model_options(p)
    p.add_argument("--window-frames", type=_positive(int), default=1, metavar="N",
                   help="frames per piece (default 1: the lowest latency)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="precision of the convolutions")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=cmd_stream_demo)

    from jaxdac import evaluate  # standard library only at import, like this module

    p = evaluate.add_parser(sub)  # jaxdac evaluate: the original's metrics (jaxdac/evaluate.py)
    p.set_defaults(func=cmd_evaluate)

    from jaxdac.train import command as train_command  # jaxdac train / export (jaxdac/train/command.py)

    train_command.add_parsers(sub)
    return parser


def bound_heap_growth(threshold: int = 1 << 20) -> bool:
    """Ask glibc's malloc to serve blocks of ``threshold`` bytes and more from their own mappings.

    Coding a long file allocates and frees block-sized buffers thousands of times. glibc raises its
    mmap threshold each time such a buffer is freed, after which they come from the heap, which
    fragments and is not given back: peak RSS then crept up by ~2 MiB per minute of audio (+115 MiB
    for a 60 minute file). A fixed threshold (setting it turns the adjustment off) keeps the peak
    flat. Returns whether it was set (False off glibc)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, threshold))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("encode", "decode"):
        bound_heap_growth()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("jaxdac: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("jaxdac: error: out of memory (try a shorter --win-duration or a smaller --chunk-batch)", file=sys.stderr)
        return 1
    except (UserError, OSError, ValueError, RuntimeError) as e:
        print(f"jaxdac: error: {_message(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
