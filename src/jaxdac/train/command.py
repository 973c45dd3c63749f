"""``jaxdac train`` and ``jaxdac export``: argument parsing (standard library only, so ``--help`` is fast)
and the calls into :mod:`jaxdac.train.loop`.

    jaxdac train --preset tiny --data DIR --output runs/tiny --steps 200
    jaxdac train --config conf/final/44khz.yml --output runs/44k          # the original's YAML, unchanged
    jaxdac train --preset finetune_44khz --data my_speech/ --output runs/ft
    jaxdac train --output runs/ft --resume [--steps 30000]
    jaxdac export runs/ft exported/ --tag best
"""

from __future__ import annotations

from pathlib import Path

TRAIN_HELP = "train or fine-tune a codec (GAN training, the original's recipe)"


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "train", help=TRAIN_HELP,
        description="Train or fine-tune DAC. The configuration is a preset and/or a YAML file (jaxdac's sections "
        "or the original's conf/*.yml keys), with --set overrides; the resolved config is written to "
        "OUTPUT/config.yml. Several devices are used data-parallel; for several hosts run the same command on "
        "each (torchrun-style MASTER_ADDR/WORLD_SIZE/RANK, SLURM srun, or JAX_COORDINATOR_ADDRESS).",
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML run config (ours or the original's)")
    p.add_argument("--preset", metavar="NAME",
                   help="base, 44khz, 44khz_16kbps, 24khz, 16khz, finetune_44khz or tiny (default: base, i.e. conf/base.yml)")
    p.add_argument("--data", action="append", metavar="DIR_OR_CSV", default=[],
                   help="training audio: a folder (searched recursively) or a CSV manifest with a 'path' column; "
                   "repeat for several groups, which are balanced as the original balances its groups")
    p.add_argument("--val-data", action="append", metavar="DIR_OR_CSV", default=[],
                   help="validation audio (default: a fixed 5%% of the training files, never trained on)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="RUN_DIR", help="the run folder")
    p.add_argument("--steps", type=int, metavar="N", help="train until N steps (schedule.num_iters)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR exactly where it stopped")
    p.add_argument("--init-weights", metavar="W",
                   help="start the generator from W: an original .pth, a jaxdac .safetensors, a release name "
                   "(44khz, 44khz_16kbps, 24khz, 16khz) or an original training folder (latest/)")
    p.add_argument("--init-discriminator", metavar="D",
                   help="start the discriminator from the original's discriminator weights.pth (or a training folder)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config value, e.g. --set data.batch_size=12 --set step.compute_dtype=bfloat16")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "export", help="export a run's weights (jaxdac .safetensors and the original's weights.pth files)",
        description="Write OUT_DIR/weights.safetensors (for jaxdac encode --weights) and the original's "
        "OUT_DIR/dac/weights.pth and OUT_DIR/discriminator/weights.pth from a checkpoint of RUN_DIR.",
    )
    p.add_argument("run", type=Path, metavar="RUN_DIR")
    p.add_argument("out", type=Path, metavar="OUT_DIR")
    p.add_argument("--tag", default="latest", help="latest (default), best (lowest validation mel loss) or a step")
    p.add_argument("--overwrite", action="store_true", help="replace existing files in OUT_DIR")
    p.set_defaults(func=cmd_export)


def _groups(paths: list[str]) -> dict[str, list[str]]:
    """Named groups for --data folders: a folder's name (made unique), so groups read as they are."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        name = Path(path.rstrip("/")).stem or "data"
        base, k = name, 2
        while name in groups:
            name, k = f"{base}_{k}", k + 1
        groups[name] = [path]
    return groups


def cmd_train(args) -> int:
    import sys

    from jaxdac.cli import UserError, enable_compilation_cache

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.train={_flow(_groups(args.data))}")
    if args.val_data:
        overrides.append(f"data.val={_flow(_groups(args.val_data))}")
    if args.init_weights:
        overrides.append(f"init.weights={_quote(args.init_weights)}")
    if args.init_discriminator:
        overrides.append(f"init.discriminator={_quote(args.init_discriminator)}")
    if args.resume and (args.config or args.preset or overrides):
        raise UserError("--resume continues the run as configured in RUN_DIR/config.yml; "
                        "only --steps may change (edit the file to change anything else)")
    from jaxdac.train.config import dump_yaml, load_config

    notes: list[str] = []
    config = None if args.resume else load_config(args.config, preset=args.preset, overrides=overrides, notes=notes)
    if notes:
        print(f"jaxdac: note: ignored keys of the original's config: {', '.join(notes)}", file=sys.stderr)
    if args.print_config:
        print(dump_yaml(config) if config else (args.output / "config.yml").read_text(), end="")
        return 0
    if config is not None and not config.data.train:
        raise UserError("no training data: pass --data DIR (or set train/build_dataset.folders in the config)")
    enable_compilation_cache()
    from jaxdac.train.loop import run

    result = run(config, args.output, resume=args.resume, num_iters=args.steps)
    return 130 if result.stopped == "interrupted" else 0


def cmd_export(args) -> int:
    from jaxdac.train.loop import export

    out = export(args.run, args.out, args.tag, overwrite=args.overwrite)
    print(out)
    return 0


def _quote(text: str) -> str:
    import json

    return json.dumps(text)  # a JSON string is a YAML string


def _flow(groups: dict[str, list[str]]) -> str:
    import json

    return json.dumps(groups)  # JSON is YAML flow style
