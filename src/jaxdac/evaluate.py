"""``jaxdac evaluate``: the original's evaluation (scripts/evaluate.py) of reconstructions or of a model.

    jaxdac evaluate REFERENCES RECONSTRUCTIONS [RECONSTRUCTIONS ...] -o OUT [--bitrates KBPS,...]
    jaxdac evaluate --weights W DATA -o OUT [--n-quantizers 3,6,9]

The first form scores the audio files under each RECONSTRUCTIONS folder against the files under
REFERENCES, paired by their path inside the folders (``a/b.wav`` with ``a/b.wav``; failing that, with
the one file of the same path and another audio suffix, such as the ``.wav`` that ``jaxdac decode``
writes for a ``.flac`` original). The second codes and decodes every file under DATA itself through
:func:`jaxdac.compress_file` and :func:`jaxdac.decompress`, at each ``--n-quantizers`` (a bitrate): the
file is encoded once, and the first N codebooks of its codes are decoded for each N, which is exactly
what compressing with ``n_quantizers=N`` gives (residual quantization is sequential).

Each pair is scored as scripts/evaluate.py does (:mod:`jaxdac.metrics`): both files with all their
channels, each resampled from its own rate to 22.05 and 44.1 kHz, and mel, STFT and waveform distance
and negative SI-SDR at each rate, with the loss classes' default settings; ``--speech`` adds PESQ and
STOI (audiotools' versions, on the 44.1 kHz pair; ``pip install "jaxdac[metrics]"``). ViSQOL is not
computed (no ViSQOL package is installable here).

The original refuses pairs whose lengths or channel counts differ after resampling (torch cannot
broadcast them; its whole run stops). Here such a pair is reported and skipped, as are files that
cannot be read or are too short for the 2048-sample STFT (46 ms at 22.05 kHz); the rest are scored, and
a summary line ends the run with exit status 1. Files without a partner are listed and left out.

Output, in ``OUT``: ``metrics.csv`` (every pair's metrics, one row per pair and condition),
``summary.json`` (per condition and metric: n, mean, std, 95% confidence interval), the same summary
printed as a table, and ``metrics_vs_bitrate.png`` (each metric's mean and interval against bitrate;
needs matplotlib, ``pip install "jaxdac[bench]"``, otherwise a one-line note says it was skipped).

Files are scored one pair at a time, padded to one of four lengths per octave (the padding does not
change a number: :func:`jaxdac.metrics.batch_metrics`), so a folder of files of many lengths compiles
a handful of programs, which the persistent compilation cache keeps for the next run.

This module imports only the standard library at load time (its parser is built for ``--help``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path, PurePosixPath

from jaxdac.cli import UserError, _check_writable, _find, _interactive, _message, _positive, enable_compilation_cache

OUTPUTS = ("metrics.csv", "summary.json", "metrics_vs_bitrate.png")
SPEECH_METRICS = ("pesq", "stoi")
_VISQOL = "not computed: no ViSQOL package is installable from the registries jaxdac supports"


# --- arguments --------------------------------------------------------------------------------------


def _number_list(kind, what: str):
    single = _positive(kind)

    def parse(text: str):
        parts = [p.strip() for p in text.split(",")]
        if not parts or any(not p for p in parts):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
        try:
            return tuple(single(p) for p in parts)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}: {e}") from None

    parse.__name__ = f"list of {what}"
    return parse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``evaluate`` on the ``jaxdac`` command's subparsers; returns its parser."""
    p = subparsers.add_parser(
        "evaluate", help="score reconstructions against references with the original's metrics",
        description="Score reconstructions against their references with the original's evaluation metrics "
        "(scripts/evaluate.py: mel, STFT and waveform distance and negative SI-SDR at 22.05 and 44.1 kHz; "
        "--speech adds PESQ and STOI; ViSQOL is not available). Either REFERENCES and one or more "
        "RECONSTRUCTIONS folders, paired by the files' paths inside them, or --weights and a DATA folder, "
        "coded and decoded at each --n-quantizers. Writes metrics.csv, summary.json and "
        "metrics_vs_bitrate.png into --output and prints the summary.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="FOLDER",
                   help="REFERENCES RECONSTRUCTIONS [RECONSTRUCTIONS ...], or with --weights one DATA folder "
                   "(a single file also works, paired with a single file)")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for the results (created if missing)")
    p.add_argument("--weights", type=Path,
                   help="code and decode DATA with this model (an original .pth or a jaxdac .safetensors)")
    p.add_argument("--n-quantizers", type=_number_list(int, "positive integers"), metavar="N[,N...]",
                   help="with --weights: codebooks kept, one evaluation each, e.g. 3,6,9 (default all)")
    p.add_argument("--bitrates", type=_number_list(float, "positive numbers"), metavar="KBPS[,KBPS...]",
                   help="without --weights: the bitrate of each RECONSTRUCTIONS folder, for the plot's axis")
    p.add_argument("--win-duration", type=_positive(float), default=5.0, metavar="SECONDS",
                   help="with --weights: window of compress/decompress, as for encode (default 5.0)")
    p.add_argument("--speech", action="store_true",
                   help="also PESQ (wide-band) and STOI, for speech; needs pip install \"jaxdac[metrics]\"")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --output")
    return p


# --- pairing ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Condition:
    """One set of reconstructions: a folder, or the model at ``n_quantizers`` codebooks."""

    name: str
    folder: Path | None = None
    n_quantizers: int | None = None
    bitrate: float | None = None  # kbit/s per channel, if known


@dataclasses.dataclass(frozen=True)
class Pair:
    key: str  # the reference's path inside REFERENCES (posix), or its name for a file argument
    reference: Path
    reconstruction: Path | None  # None: made by the model


def _audio_files(path: Path) -> list[tuple[Path, str]]:
    """``(file, key)`` for every audio file under a folder (key: the path inside it), or the file itself."""
    from jaxdac.io.audio import audio_suffixes

    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    return [(p, rel.as_posix()) for p, rel, _ in _find([path], audio_suffixes(), "audio")]


def _stem(key: str) -> str:
    return str(PurePosixPath(key).with_suffix(""))  # "sub/b.flac" -> "sub/b"


def pair_files(references: list[tuple[Path, str]], reconstructions: list[tuple[Path, str]]):
    """``(pairs, unpaired references, unused reconstructions)``: each reference with the reconstruction at
    its path, else with the one reconstruction whose path differs only in its suffix (when exactly one
    reference and one reconstruction share that stem)."""
    by_key = {key: path for path, key in reconstructions}
    pairs: dict[str, Path] = {}
    for path, key in references:
        if key in by_key:
            pairs[key] = by_key[key]
    used = set(pairs)
    left_refs = defaultdict(list)
    for path, key in references:
        if key not in pairs:
            left_refs[_stem(key)].append(key)
    left_recons = defaultdict(list)
    for path, key in reconstructions:
        if key not in used:
            left_recons[_stem(key)].append((key, path))
    for stem, keys in left_refs.items():
        candidates = left_recons.get(stem, [])
        if len(keys) == 1 and len(candidates) == 1:
            pairs[keys[0]] = candidates[0][1]
            used.add(candidates[0][0])
    unpaired = [key for _, key in references if key not in pairs]
    unused = [key for _, key in reconstructions if key not in used]
    return pairs, unpaired, unused


# --- scoring one pair -------------------------------------------------------------------------------


class PairError(ValueError):
    """A pair that cannot be scored (lengths or channels differ, too short)."""


def bucket(n: int) -> int:
    """The padded length for ``n`` samples: the smallest ``m * 2**k >= n`` with ``m`` in 5..8 (four sizes
    per octave, less than 25% padding), so files of many lengths share a few compiled programs."""
    if n <= 8:
        return n
    k = (n - 1).bit_length() - 3
    return -(-n // (1 << k)) << k


def check_pair(est_shape, est_rate: int, ref_shape, ref_rate: int) -> None:
    """Raise :class:`PairError` unless the original could score the pair: equal channel counts, equal
    lengths after resampling to each evaluation rate, and enough samples for its STFT."""
    from jaxdac.dsp.resample import resampled_length
    from jaxdac.metrics import EVAL_RATES, min_length

    (ce, te), (cr, tr) = est_shape, ref_shape
    if ce != cr:
        raise PairError(f"channels differ: reference {cr}, reconstruction {ce} (the original's metrics need equal "
                        "channel counts)")
    for rate in EVAL_RATES:
        ne, nr = resampled_length(te, est_rate, rate), resampled_length(tr, ref_rate, rate)
        if ne != nr:
            raise PairError(
                f"lengths differ: reference {tr} samples at {ref_rate} Hz, reconstruction {te} at {est_rate} Hz "
                f"({nr} and {ne} at {rate} Hz); the original's metrics need equal lengths after resampling"
            )
        if nr < min_length():
            raise PairError(f"too short: {tr} samples at {ref_rate} Hz ({tr / ref_rate * 1000:.0f} ms) give {nr} at "
                            f"{rate} Hz; the original's STFT needs at least {min_length()}")


_PAIR_FN = None


def _pair_fn():
    """The jitted scoring of one padded pair (built on first use, so that importing this module stays
    light): each signal resampled from its own rate, then :func:`jaxdac.metrics.metrics_at_rate`."""
    global _PAIR_FN
    if _PAIR_FN is None:
        import functools

        import jax

        from jaxdac import metrics

        @functools.partial(jax.jit, static_argnames=("est_rate", "ref_rate", "keep_44k"))
        def score(est, ref, est_len, ref_len, est_rate: int, ref_rate: int, keep_44k: bool):
            out, kept = {}, None
            for rate in metrics.EVAL_RATES:
                x, n = metrics.resample_valid(est, est_rate, rate, est_len)
                y, _ = metrics.resample_valid(ref, ref_rate, rate, ref_len)
                size = min(x.shape[-1], y.shape[-1])  # both cover the n valid samples; the rest is ignored
                values = metrics.metrics_at_rate(x[..., :size], y[..., :size], rate, n)
                out.update({f"{name}-{metrics.RATE_TAGS[rate]}": value for name, value in values.items()})
                if keep_44k and rate == 44100:
                    kept = (x[..., :size], y[..., :size], n)
            return out, kept

        _PAIR_FN = score
    return _PAIR_FN


def score_pair(estimate, est_rate: int, reference, ref_rate: int, speech: bool = False) -> tuple[dict, list[str]]:
    """The original's metrics of one pair of ``[C, T]`` arrays: ``({metric name: float}, notes)``.
    Raises :class:`PairError` for a pair the original cannot score. PESQ or STOI that cannot be computed
    (no speech found) are NaN with a note."""
    import numpy as np

    from jaxdac import metrics

    check_pair(estimate.shape, est_rate, reference.shape, ref_rate)

    def padded(x):
        size = bucket(x.shape[-1])
        return np.pad(np.asarray(x, np.float32), [(0, 0), (0, size - x.shape[-1])])[None]

    out, kept = _pair_fn()(padded(estimate), padded(reference), np.array([estimate.shape[-1]], np.int32),
                           np.array([reference.shape[-1]], np.int32), est_rate, ref_rate, speech)
    values = {name: float(out[name][0]) for name in metrics.METRIC_NAMES}
    notes = []
    if speech:
        x, y, n = kept
        n = int(n[0])
        x, y = np.asarray(x)[..., :n], np.asarray(y)[..., :n]
        try:
            values["pesq"] = float(metrics.pesq(x, y, 44100)[0])
        except ValueError as e:
            values["pesq"] = math.nan
            notes.append(str(e).replace("item 0", "this pair"))
        with warnings.catch_warnings(record=True) as caught:  # pystoi warns when it cannot score
            warnings.simplefilter("always")
            values["stoi"] = float(metrics.stoi(x, y, 44100)[0])
        notes.extend(f"STOI: {w.message}".splitlines()[0] for w in caught)
    return values, notes


# --- summaries and outputs ---------------------------------------------------------------------------


def _json_number(value):
    """JSON has no NaN or infinity: NaN (undefined) becomes null, an infinity the string "inf" / "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def summary_table(conditions: list[Condition], summaries: dict[str, dict], names: list[str]) -> str:
    """The printed summary: one row per metric, one column per condition, ``mean ± half CI (sd std)``."""

    def header(c: Condition) -> str:
        rate = f", {c.bitrate:.2f} kbps" if c.bitrate is not None else ""
        return f"{c.name}{rate}"

    def cell(s) -> str:
        if s.n == 0:
            return "n/a"
        if s.n < 2 or not math.isfinite(s.std):  # one file, or an infinite value (-inf SI-SDR of a copy)
            return f"{s.mean:.4g} (n={s.n})"
        return f"{s.mean:.4g} ± {(s.ci_high - s.ci_low) / 2:.2g} (sd {s.std:.2g})"

    rows = [["metric", *[header(c) for c in conditions]], ["---"] * (len(conditions) + 1)]
    for name in names:
        rows.append([name, *[cell(summaries[c.name][name]) for c in conditions]])
    widths = [max(len(r[i]) for r in rows if r[i] != "---") for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        if r[0] == "---":
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        else:
            lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |")
    counts = sorted({summaries[c.name][names[0]].n for c in conditions})
    n_text = "/".join(map(str, counts))
    lines.append(f"mean ± half-width of the 95% confidence interval (Student's t), (sd: standard deviation), over "
                 f"{n_text} files; sisdr is the negative SI-SDR in dB (lower is better), as in the original")
    return "\n".join(lines)


def _write(path: Path, data: bytes, overwrite: bool) -> None:
    from jaxdac.io.atomic import atomic_output

    with atomic_output(path, overwrite=overwrite) as f:
        f.write(data)


def write_csv(path: Path, rows: list[dict], names: list[str], overwrite: bool) -> None:
    fields = ["reference", "reconstruction", "condition", "n_quantizers", "bitrate_kbps", "sample_rate",
              "channels", "duration_s", *names]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else (f"{row[k]:.9g}" if isinstance(row[k], float) else row[k]))
                         for k in fields})
    _write(path, text.getvalue().encode(), overwrite)


def plot(path: Path, conditions: list[Condition], summaries: dict[str, dict], names: list[str], overwrite: bool) -> bool:
    """Each metric's mean and 95% interval against bitrate (or against the conditions, unnamed bitrates).
    False if matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = all(c.bitrate is not None for c in conditions)
    xs = [c.bitrate if numeric else i for i, c in enumerate(conditions)]
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        s = [summaries[c.name][name] for c in conditions]
        means = [x.mean for x in s]
        half = [0.0 if not math.isfinite(x.ci_high) else (x.ci_high - x.ci_low) / 2 for x in s]
        ax.errorbar(xs, means, yerr=half, marker="o", capsize=3)
        ax.set_title(name + (" (-SI-SDR, dB)" if name.startswith("sisdr") else ""), fontsize=10)
        ax.grid(alpha=0.3)
        if numeric:
            ax.set_xlabel("kbit/s per channel")
        else:
            short = [Path(c.name).name or c.name for c in conditions]
            labels = short if len(set(short)) == len(short) else [c.name for c in conditions]
            ax.set_xticks(xs, labels, rotation=30, fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("jaxdac evaluate: mean and 95% confidence interval per condition", fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    _write(path, buffer.getvalue(), overwrite)
    return True


# --- the command -------------------------------------------------------------------------------------


def _plan(args):
    """Validate the arguments and find the files, before any work: ``(conditions, pairs, unpaired, unused)``."""
    inputs = list(args.inputs)
    if args.weights is not None:
        if len(inputs) != 1:
            raise UserError(f"with --weights, give one DATA folder (got {len(inputs)} paths)")
        if args.bitrates is not None:
            raise UserError("--bitrates labels RECONSTRUCTIONS folders; with --weights the bitrate follows from "
                            "--n-quantizers")
        if not args.weights.is_file():
            raise UserError(f"--weights {args.weights}: no such file")
        files = _audio_files(inputs[0])
        pairs = [Pair(key, path, None) for path, key in files]
        return None, pairs, [], {}
    if args.n_quantizers is not None:
        raise UserError("--n-quantizers needs --weights (the model that makes the reconstructions)")
    if len(inputs) < 2:
        raise UserError("give REFERENCES and at least one RECONSTRUCTIONS folder (or --weights W DATA)")
    references, folders = inputs[0], inputs[1:]
    if args.bitrates is not None and len(args.bitrates) != len(folders):
        raise UserError(f"--bitrates gives {len(args.bitrates)} values for {len(folders)} RECONSTRUCTIONS folders")
    names = [str(f) for f in folders]
    if len(set(names)) != len(names):
        raise UserError("a RECONSTRUCTIONS folder is given twice")
    ref_files = _audio_files(references)
    ref_paths = {key: path for path, key in ref_files}
    conditions, all_pairs, unpaired, unused = [], {}, {}, {}
    for i, folder in enumerate(folders):
        if references.is_dir() != folder.is_dir() and folder.exists():
            raise UserError(f"{folder}: REFERENCES and RECONSTRUCTIONS must both be folders or both files")
        rec_files = _audio_files(folder)
        if not references.is_dir():  # a file against a file
            pairs, missing, extra = {ref_files[0][1]: rec_files[0][0]}, [], []
        else:
            pairs, missing, extra = pair_files(ref_files, rec_files)
        condition = Condition(str(folder), folder, None, None if args.bitrates is None else args.bitrates[i])
        conditions.append(condition)
        all_pairs[condition.name] = [Pair(key, ref_paths[key], rec) for key, rec in sorted(pairs.items())]
        unpaired[condition.name], unused[condition.name] = missing, extra
    return conditions, all_pairs, unpaired, unused


def run(args) -> int:
    """Run ``jaxdac evaluate`` with parsed ``args``; returns the exit status (1 if any pair was skipped)."""
    started = time.perf_counter()
    conditions, pairs, unpaired, unused = _plan(args)
    if args.speech:
        from jaxdac.metrics import check_speech_packages

        try:
            check_speech_packages()
        except ImportError as e:
            raise UserError(f"--speech: {e}") from None
    outputs = {name: args.output / name for name in OUTPUTS}
    for path in outputs.values():
        if path.is_dir():
            raise UserError(f"{path} is a directory; cannot write results there")
        if path.exists() and not args.overwrite:
            raise UserError(f"{path} exists (pass --overwrite to replace it)")
    _check_writable(args.output, set())

    if conditions is not None:  # unpaired files are listed, not errors; no pair at all is one
        references = args.inputs[0]
        for condition in conditions:
            for key in unpaired[condition.name]:
                print(f"jaxdac: unpaired: {references / key} has no reconstruction in {condition.folder}", file=sys.stderr)
            for key in unused[condition.name]:
                print(f"jaxdac: unpaired: {condition.folder / key} has no reference in {references}", file=sys.stderr)
            if not pairs[condition.name]:
                raise UserError(f"no file under {references} has a reconstruction under {condition.folder} (files are "
                                "paired by their path inside the folders)")

    from jaxdac.metrics import METRIC_NAMES, summarize

    names = list(METRIC_NAMES) + (list(SPEECH_METRICS) if args.speech else [])
    enable_compilation_cache()
    if conditions is None:
        model, conditions = _load_model(args)
        scored = _score_model(model, conditions, pairs, args)
    else:
        scored = _score_folders(conditions, pairs, args)
    rows, skipped, notes, n_pairs = scored
    for note in notes:
        print(f"jaxdac: note: {note}", file=sys.stderr)
    if not rows:
        raise UserError(f"none of the {n_pairs} pairs could be scored (listed above); nothing written")

    order = {c.name: i for i, c in enumerate(conditions)}
    rows.sort(key=lambda r: (order[r["condition"]], r["reference"]))  # by condition, then by file
    summaries = {c.name: {name: summarize([r[name] for r in rows if r["condition"] == c.name]) for name in names}
                 for c in conditions}
    elapsed = time.perf_counter() - started
    args.output.mkdir(parents=True, exist_ok=True)
    write_csv(outputs["metrics.csv"], rows, names, args.overwrite)
    report = _report(args, conditions, summaries, names, skipped, unpaired, unused, elapsed, len(rows))
    _write(outputs["summary.json"], (json.dumps(report, indent=2, allow_nan=False) + "\n").encode(), args.overwrite)
    print(summary_table(conditions, summaries, names))
    if plot(outputs["metrics_vs_bitrate.png"], conditions, summaries, names, args.overwrite):
        written = ", ".join(OUTPUTS)
    else:
        written = ", ".join(OUTPUTS[:2])
        print("jaxdac: note: matplotlib is not installed (pip install \"jaxdac[bench]\"); skipped the plot",
              file=sys.stderr)
    print(f"scored {len(rows)} pairs in {elapsed:.1f} s; wrote {written} to {args.output}")
    if skipped:
        print(f"jaxdac: error: {len(skipped)} of {n_pairs} pairs skipped (listed above); the other "
              f"{len(rows)} are in {outputs['metrics.csv']}", file=sys.stderr)
        return 1
    return 0


# Failures of one pair (unreadable, corrupt, mismatched, too short); anything else stops the run.
_PAIR_ERRORS = (UserError, OSError, ValueError, RuntimeError)


class _Scoring:
    """Rows, skips and notes of a run, with a progress bar (on an interactive stderr)."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.write = tqdm.write
        self.bar = tqdm(total=total, desc="evaluate", unit="pair", disable=not _interactive(), dynamic_ncols=True)
        self.total = total
        self.rows: list[dict] = []
        self.skipped: list[dict] = []
        self.notes: list[str] = []

    def skip(self, pair: Pair, condition: Condition | None, error: BaseException, count: int = 1) -> None:
        message = _message(error)
        if str(pair.reference) not in message and (pair.reconstruction is None or str(pair.reconstruction) not in message):
            message = f"{pair.reference}: {message}"
        where = f" [{condition.name}]" if condition is not None else ""
        self.write(f"jaxdac: skipped{where}: {message}", file=sys.stderr)
        self.skipped.extend([{"reference": pair.key, "condition": None if condition is None else condition.name,
                              "reason": message}] * count)
        self.bar.update(count)

    def record(self, pair: Pair, condition: Condition, values: dict, rate: int, shape, reconstruction: str) -> None:
        self.rows.append({"reference": pair.key, "reconstruction": reconstruction, "condition": condition.name,
                          "n_quantizers": condition.n_quantizers, "bitrate_kbps": condition.bitrate,
                          "sample_rate": rate, "channels": shape[0], "duration_s": shape[-1] / rate, **values})
        self.bar.update(1)

    def result(self):
        self.bar.close()
        return self.rows, self.skipped, self.notes, self.total


def _score_folders(conditions: list[Condition], pairs: dict[str, list[Pair]], args):
    from jaxdac.io.audio import read_audio

    scoring = _Scoring(sum(len(v) for v in pairs.values()))
    references: dict[Path, tuple] = {}
    for condition in conditions:
        for pair in pairs[condition.name]:
            try:
                if pair.reference not in references:
                    references.clear()  # one reference in memory at a time
                    references[pair.reference] = read_audio(pair.reference)
                reference, ref_rate = references[pair.reference]
                estimate, est_rate = read_audio(pair.reconstruction)
                try:
                    values, notes = score_pair(estimate, est_rate, reference, ref_rate, args.speech)
                except PairError as e:
                    raise PairError(f"{pair.reference} vs {pair.reconstruction}: {e}") from None
            except _PAIR_ERRORS as e:
                scoring.skip(pair, condition, e)
                continue
            scoring.notes.extend(f"{pair.reconstruction}: {n}" for n in notes)
            inside = condition.folder.is_dir()
            name = pair.reconstruction.relative_to(condition.folder).as_posix() if inside else str(pair.reconstruction)
            scoring.record(pair, condition, values, ref_rate, reference.shape, name)
    return scoring.result()


def _score_model(model, conditions: list[Condition], pairs: list[Pair], args):
    """Each file coded once with all codebooks, decoded at each condition's n_quantizers, and scored."""
    from jaxdac.io.audio import read_audio

    scoring = _Scoring(len(pairs) * len(conditions))
    for pair in pairs:
        try:
            reference, rate = read_audio(pair.reference)
            check_pair(reference.shape, rate, reference.shape, rate)  # too short for the metrics: skip it now
            codes = _encode(model, pair.reference, args.win_duration)
        except _PAIR_ERRORS as e:
            scoring.skip(pair, None, e, count=len(conditions))
            continue
        for condition in conditions:
            try:
                estimate = _decode(model, codes, condition.n_quantizers, args.win_duration)
                values, notes = score_pair(estimate, rate, reference, rate, args.speech)
            except _PAIR_ERRORS as e:
                scoring.skip(pair, condition, e)
                continue
            scoring.notes.extend(f"{pair.reference} [{condition.name}]: {n}" for n in notes)
            scoring.record(pair, condition, values, rate, reference.shape, "")
    return scoring.result()


def _load_model(args):
    """The model of ``--weights`` and one condition per ``--n-quantizers`` (ascending), with its bitrate."""
    from jaxdac.weights.load import load_model

    model = load_model(path=args.weights)
    n_codebooks = model.n_codebooks
    chosen = args.n_quantizers or (n_codebooks,)
    too_many = [n for n in chosen if n > n_codebooks]
    if too_many:
        raise UserError(f"--n-quantizers {too_many[0]}: the model has only {n_codebooks} codebooks")
    if len(set(chosen)) != len(chosen):
        raise UserError("--n-quantizers lists a value twice")
    per_codebook = model.config.frame_rate * math.log2(model.config.codebook_size) / 1000  # kbit/s per channel
    return model, [Condition(f"n_quantizers={n}", None, n, n * per_codebook) for n in sorted(chosen)]


def _encode(model, path: Path, win_duration: float):
    from jaxdac.inference import compress_file

    return compress_file(model, path, win_duration=win_duration)  # all codebooks, sliced per condition


def _decode(model, dac_file, n_quantizers: int, win_duration: float):
    from jaxdac.inference import decompress

    # The first n codebooks of the full codes are the codes of compress(..., n_quantizers=n).
    kept = dataclasses.replace(dac_file, codes=dac_file.codes[:, :n_quantizers])
    return decompress(model, kept, win_duration=win_duration)[0]  # [C, T] at the file's rate


def _report(args, conditions, summaries, names, skipped, unpaired, unused, elapsed: float, n_rows: int) -> dict:
    from jaxdac.metrics import EVAL_MEL, EVAL_RATES, EVAL_STFT

    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [clean(v) for v in obj]
        if isinstance(obj, float):
            return _json_number(obj)
        return obj

    report = {
        "mode": "weights" if args.weights is not None else "folders",
        "inputs": [str(p) for p in args.inputs],
        "weights": None if args.weights is None else str(args.weights),
        "settings": {
            "rates": list(EVAL_RATES),
            "mel": dataclasses.asdict(EVAL_MEL),
            "stft": dataclasses.asdict(EVAL_STFT),
            "sisdr": "SISDRLoss(): negative SI-SDR in dB, zero-mean, channels concatenated",
            "pesq_stoi": "on the 44.1 kHz pair (audiotools.metrics.quality)" if args.speech else "not requested",
            "visqol": _VISQOL,
        },
        "conditions": [
            {"name": c.name, "n_quantizers": c.n_quantizers, "bitrate_kbps": c.bitrate,
             "metrics": {name: summaries[c.name][name].to_dict() for name in names}}
            for c in conditions
        ],
        "pairs_scored": n_rows,
        "skipped": skipped,
        "unpaired": {"references": unpaired, "reconstructions": unused},
        "seconds": elapsed,
    }
    return clean(report)
