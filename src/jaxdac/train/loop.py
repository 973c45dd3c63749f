"""``jaxdac train``: the program that trains or fine-tunes DAC, on one CPU, many devices or many hosts.

    result = run(config, "runs/my-run")                  # a RunConfig (jaxdac.train.config)
    result = run(config, "runs/my-run", resume=True)     # continue exactly where it stopped

It reads top to bottom in the order it runs: processes, run folder, mesh, data, models and optimisers,
shardings, restore, loop, export. A run folder holds what a person wants to find::

    RUN/config.yml          the resolved configuration (written once; --resume reads it back)
    RUN/checkpoints/<step>/ Orbax checkpoints: both models, both optimiser states, the step, the data
                            iterator state; the latest ``keep_latest``, the best by validation mel loss and
                            the ``save_iters`` milestones are kept; each written asynchronously and atomically
    RUN/tags.json           which checkpoint is latest and best (with its validation mel loss)
    RUN/logs/               TensorBoard events: scalars (``mel/loss/train``, ``mel/loss/val``...), audio
                            samples and mel-spectrogram images of reconstructions
    RUN/metrics.jsonl       every logged number, one JSON line per step and split
    RUN/log.txt             what the console showed
    RUN/export/             the generator for ``jaxdac encode --weights`` (``weights.safetensors``) and both
                            models in the original's format (``dac/weights.pth``, ``discriminator/weights.pth``)

Exact resume: step ``k``'s batch is a pure function of ``k`` (:mod:`jaxdac.train.data`), its random key is
``fold_in(key(seed), k)``, and the checkpoint holds every array the step reads, so a run stopped after
step ``k`` and resumed computes bit for bit what the uninterrupted run computes. Logs after the restored
step are dropped on resume (TensorBoard's ``purge_step``; ``metrics.jsonl`` is rewritten).

Several devices: one ``jax.sharding.Mesh`` over every device of every process, axis ``"data"``; the
global batch (``data.batch_size``, as the original's) is split over it and the parameters and optimiser
states are replicated, so XLA averages the gradients across devices. Several hosts: each process runs
this same program (see :func:`initialize_distributed` for the launchers it recognises), reads its own
rows of every batch, and the arrays are assembled across processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxdac.config import DACConfig
from jaxdac.distributed import initialize_distributed
from jaxdac.io.atomic import atomic_output
from jaxdac.nn.codec import DAC
from jaxdac.nn.discriminator import Discriminator
from jaxdac.metrics import validation_metrics
from jaxdac.train.config import ConfigError, RunConfig, dump_yaml, load_config
from jaxdac.train.data import load_data
from jaxdac.train.step import NonFiniteLossError, TrainState, check_finite, init_state, train_step

__all__ = ["RunResult", "TrainingError", "initialize_distributed", "run", "export", "RELEASES"]

# Release names accepted as --init-weights: (model type, bitrate).
RELEASES = {"44khz": ("44khz", "8kbps"), "44khz_8kbps": ("44khz", "8kbps"), "44khz_16kbps": ("44khz", "16kbps"),
            "24khz": ("24khz", "8kbps"), "16khz": ("16khz", "8kbps")}


class TrainingError(RuntimeError):
    """The run cannot start or go on; the message is one line and says what is kept."""


@dataclasses.dataclass
class RunResult:
    steps: int  # steps done (the state's step count)
    stopped: str  # "finished", "interrupted"
    last_checkpoint: int | None
    train_metrics: dict[str, float]
    val_metrics: dict[str, float]
    export: Path | None


# --- the run folder ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunFolder:
    root: Path

    config = property(lambda self: self.root / "config.yml")
    checkpoints = property(lambda self: self.root / "checkpoints")
    tags = property(lambda self: self.root / "tags.json")
    logs = property(lambda self: self.root / "logs")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    log = property(lambda self: self.root / "log.txt")
    export = property(lambda self: self.root / "export")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=True) as f:
        f.write(text.encode())


class _Console:
    """Lines for the person at the terminal, copied to RUN/log.txt; only process 0 prints."""

    def __init__(self, folder: RunFolder, enabled: bool):
        self.enabled = enabled
        self._file = open(folder.log, "a") if enabled else None

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# --- models -----------------------------------------------------------------------------------------


def _architecture(config: DACConfig) -> dict:
    kwargs = config.to_kwargs()
    kwargs.pop("quantizer_dropout")
    return kwargs


def _load_generator(source: str) -> DAC:
    from jaxdac.weights.load import load_model

    path = Path(source)
    if source in RELEASES and not path.exists():
        return load_model(*RELEASES[source])
    if path.is_dir():
        path = path / "dac" / "weights.pth"
    return load_model(path=path)


def _check_init(init) -> None:
    """Weights to start from exist (or name a release), before the data scan and any compiling."""
    for what, source in (("init weights", init.weights), ("init discriminator", init.discriminator)):
        if source and not (what == "init weights" and source in RELEASES) and not Path(source).exists():
            raise ConfigError(f"{what}: no such file or folder: {source}")


def _models(config: RunConfig, console) -> tuple[DAC, Discriminator]:
    """The generator and discriminator the run starts from: fresh (seeded) or the weights of ``init``."""
    seed = config.schedule.seed
    init = config.init
    if init.weights:
        generator = _load_generator(init.weights)
        if _architecture(generator.config) != _architecture(config.model):
            theirs, ours = _architecture(generator.config), _architecture(config.model)
            diff = ", ".join(f"{k} {theirs[k]} (config: {ours[k]})" for k in theirs if theirs[k] != ours[k])
            raise ConfigError(f"init weights {init.weights} are another model than the config's: {diff}; "
                              "pick the matching --preset or set the model section to the weights'")
        console(f"generator from {init.weights} ({generator.sample_rate} Hz, {generator.n_codebooks} codebooks)")
    else:
        generator = DAC(config.model, rngs=nnx.Rngs(seed))
    source = init.discriminator
    if source is None and init.weights and Path(init.weights).is_dir():
        candidate = Path(init.weights) / "discriminator" / "weights.pth"
        source = str(candidate) if candidate.is_file() else None
    if source:
        from jaxdac.weights.discriminator import load_discriminator

        path = Path(source)
        if path.is_dir():
            path = path / "discriminator" / "weights.pth"
        discriminator = load_discriminator(path, config=config.discriminator)
        console(f"discriminator from {path}")
    else:
        discriminator = Discriminator(config.discriminator, rngs=nnx.Rngs(seed + 1))
    return generator, discriminator


# --- checkpoints ------------------------------------------------------------------------------------


class Checkpoints:
    """Orbax checkpoints of the run: ``save`` asynchronously, ``restore`` the newest readable one."""

    def __init__(self, folder: RunFolder, config: RunConfig):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.folder = folder
        policies = ocp.checkpoint_managers
        preserve = policies.AnyPreservationPolicy([
            policies.LatestN(n=config.schedule.keep_latest),
            policies.BestN(get_metric_fn=lambda m: -m["val/mel/loss"], n=1, keep_checkpoints_without_metrics=False),
            policies.CustomSteps(list(config.schedule.save_iters)),
        ])
        options = ocp.CheckpointManagerOptions(preservation_policy=preserve, enable_async_checkpointing=True,
                                               cleanup_tmp_directories=True, create=True)
        self.manager = ocp.CheckpointManager(folder.checkpoints.absolute(), options=options)
        self.best: tuple[int, float] | None = self._read_tags().get("best")

    def _read_tags(self) -> dict:
        try:
            tags = json.loads(self.folder.tags.read_text())
            return {"best": tuple(tags["best"]) if tags.get("best") else None}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def save(self, state: TrainState, data_state: dict, meta: dict, val_mel: float | None) -> None:
        ocp = self._ocp
        step = int(meta["step"])
        metrics = None if val_mel is None else {"val/mel/loss": float(val_mel)}
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state), meta=ocp.args.JsonSave(meta),
        ), metrics=metrics, force=True)
        if val_mel is not None and (self.best is None or val_mel < self.best[1]):
            self.best = (step, float(val_mel))

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def write_tags(self) -> None:
        if jax.process_index() == 0:
            latest = self.manager.latest_step()
            _write_text(self.folder.tags, json.dumps({"latest": latest, "best": list(self.best) if self.best else None}))

    def steps(self) -> list[int]:
        self.manager.reload()
        return sorted(self.manager.all_steps())

    def restore(self, abstract: TrainState, step: int | None = None, console=print) -> tuple[TrainState, dict, dict]:
        """The newest checkpoint (or ``step``) that reads back; a damaged one is reported and the one before
        it tried. Returns ``(state, data state, meta)``."""
        ocp = self._ocp
        steps = [step] if step is not None else self.steps()[::-1]
        if not steps:
            raise TrainingError(f"no checkpoint in {self.folder.checkpoints} to resume from")
        errors = []
        for s in steps:
            try:
                out = self.manager.restore(s, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore(),
                ))
                if errors:
                    console(f"resuming from checkpoint {s} instead")
                    self._set_aside([bad for bad, _ in errors], console)
                return out.state, dict(out.data), dict(out.meta)
            except Exception as e:  # whatever a damaged checkpoint raises inside Orbax / TensorStore
                message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                errors.append((s, message))
                console(f"checkpoint {s} cannot be read ({message[:200]})")
        raise TrainingError("no readable checkpoint: " + "; ".join(f"{s}: {m[:120]}" for s, m in errors))

    def _set_aside(self, steps: list[int], console) -> None:
        """Move damaged checkpoints to ``RUN/damaged/<step>`` (kept for a person to look at), so the
        resumed run can write those steps again."""
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("jaxdac: damaged checkpoints read")  # every process has tried them
        if jax.process_index() == 0:
            for step in steps:
                source = self.folder.checkpoints / str(step)
                target, k = self.folder.root / "damaged" / str(step), 2
                while target.exists():
                    target, k = self.folder.root / "damaged" / f"{step}.{k}", k + 1
                target.parent.mkdir(parents=True, exist_ok=True)
                source.rename(target)
                console(f"moved the damaged checkpoint {step} to {target}")
        multihost_utils.sync_global_devices("jaxdac: damaged checkpoints set aside")
        self.manager.reload()
        if self.best is not None and self.best[0] in steps:
            self.best = None  # the next validation names the best again

    def close(self) -> None:
        self.manager.close()


def _abstract_state(config: RunConfig, replicated) -> TrainState:
    """The state's shapes, dtypes and shardings, for restoring, without allocating it."""
    def build():
        generator = DAC(config.model, rngs=nnx.Rngs(0))
        discriminator = Discriminator(config.discriminator, rngs=nnx.Rngs(0))
        return init_state(generator, discriminator, config.step)

    shapes = jax.eval_shape(build)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), shapes)


# --- logs -------------------------------------------------------------------------------------------


class _Logs:
    """TensorBoard events (tensorboardX, no TensorFlow) and RUN/metrics.jsonl; process 0 only."""

    def __init__(self, folder: RunFolder, start_step: int, enabled: bool):
        self.enabled = enabled
        self.folder = folder
        if not enabled:
            return
        from tensorboardX import SummaryWriter

        self._truncate(start_step)
        self.writer = SummaryWriter(str(folder.logs), purge_step=start_step + 1 if start_step else None,
                                    flush_secs=30)
        self._jsonl = open(folder.metrics, "a")

    def _truncate(self, start_step: int) -> None:
        # A resumed run rewrites what the stopped one logged after its last checkpoint.
        path = self.folder.metrics
        if not path.exists():
            return
        kept = [line for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= start_step]
        _write_text(path, "".join(line + "\n" for line in kept))

    def scalars(self, step: int, split: str, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        for name, value in values.items():
            self.writer.add_scalar(f"{name}/{split}", value, step)
        self._jsonl.write(json.dumps({"step": step, "split": split, **values}) + "\n")
        self._jsonl.flush()

    def audio(self, step: int, tag: str, audio: np.ndarray, sample_rate: int) -> None:
        if self.enabled:
            self.writer.add_audio(tag, np.clip(audio, -1, 1), step, sample_rate=sample_rate)

    def image(self, step: int, tag: str, image: np.ndarray) -> None:
        if self.enabled:
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        if self.enabled:
            self.writer.close()
            self._jsonl.close()


def _mel_image(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """A log-mel spectrogram as an RGB uint8 image (low frequencies at the bottom), for TensorBoard."""
    from jaxdac.dsp.stft import mel_spectrogram

    mel = np.asarray(mel_spectrogram(jnp.asarray(audio[None, None]), sample_rate, 2048, n_mels=128))[0, 0]
    db = 20 * np.log10(np.maximum(mel, 1e-5))
    db = np.clip((db - db.max() + 80) / 80, 0, 1)[::-1]  # 80 dB of range
    # A simple perceptual colour ramp (dark blue -> yellow), so no plotting library is needed.
    ramp = np.stack([db ** 0.8, db ** 1.2 * 0.9 + 0.05 * (1 - db), 0.45 * (1 - db) + 0.1 * db], axis=-1)
    return (np.clip(ramp, 0, 1) * 255).astype(np.uint8)


# --- validation --------------------------------------------------------------------------------------


def _val_function(state: TrainState, config: RunConfig):
    """Jitted ``(generator params, audio [B, 1, T], valid [B]) -> (sums of per-item losses, count,
    reconstructions)``: the original's ``val_loop`` (generator in eval mode: every codebook, no dropout;
    mel, STFT and waveform losses), summed over the valid rows."""
    sample_rate = state.sample_rate
    step = config.step

    def per_item(recons, audio):  # jaxdac.metrics' validation metrics, the ones `jaxdac evaluate` reports too
        return validation_metrics(recons[None], audio[None], sample_rate, step.mel, step.stft)

    @jax.jit
    def validate(params, audio, valid):
        model = nnx.merge(state.generator_def, params, copy=True)
        recons = model(audio).audio
        values = jax.vmap(per_item)(recons, audio)
        weight = valid.astype(jnp.float32)
        return {k: jnp.sum(v * weight) for k, v in values.items()}, jnp.sum(weight), recons

    return validate


# --- signals -----------------------------------------------------------------------------------------


class _Stop:
    """SIGINT / SIGTERM ask the loop to save and stop after the current step; a second SIGINT stops now."""

    def __init__(self):
        self.requested: str | None = None
        self._previous = {}

    def _handler(self, signum, frame):
        name = signal.Signals(signum).name
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = name

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --- the run -----------------------------------------------------------------------------------------


def _prepare_folder(folder: RunFolder, config: RunConfig, resume: bool, num_iters: int | None) -> RunConfig:
    if resume:
        if not folder.config.exists():
            raise TrainingError(f"{folder.root} holds no run to resume (no config.yml); start one without --resume")
        saved = load_config(folder.config)
        if num_iters is not None:
            saved = saved.replace_path("schedule.num_iters", num_iters)
        return saved
    if folder.config.exists() or (folder.checkpoints.exists() and any(folder.checkpoints.iterdir())):
        raise TrainingError(f"{folder.root} already holds a run; pass --resume to continue it or choose another --output")
    if num_iters is not None:
        config = config.replace_path("schedule.num_iters", num_iters)
    return config


def _global(array: np.ndarray, sharding) -> jax.Array:
    """This process's rows of a batch -> the global array, split over the mesh."""
    return jax.make_array_from_process_local_data(sharding, np.ascontiguousarray(array))


def run(config: RunConfig, output: str | os.PathLike, *, resume: bool = False, num_iters: int | None = None,
        progress: bool | None = None, on_step: Callable[[int, dict], None] | None = None) -> RunResult:
    """Train (or continue) the run in ``output``. See the module docstring. ``num_iters`` overrides
    ``schedule.num_iters`` (also on resume, to extend a run). ``on_step(step, metrics)`` is called on process
    0 after each step's metrics are known (tests use it)."""
    # 1. Processes and the run folder.
    process, n_processes = initialize_distributed()
    folder = RunFolder(Path(output))
    config = _prepare_folder(folder, config, resume, num_iters)
    leader = process == 0
    if leader:
        folder.root.mkdir(parents=True, exist_ok=True)
    console = _Console(folder, leader)
    if progress is None:
        progress = leader and sys.stderr.isatty()

    # 2. The mesh: every device of every process on one data axis.
    devices = np.array(jax.devices())
    mesh = Mesh(devices, ("data",))
    batch_sharding = NamedSharding(mesh, PartitionSpec("data"))
    replicated = NamedSharding(mesh, PartitionSpec())
    for name in ("batch_size", "val_batch_size"):
        size = getattr(config.data, name)
        if size % devices.size:
            raise ConfigError(f"data.{name} {size} is not divisible by the {devices.size} devices; "
                              f"the batch is global and split evenly over them")

    if not resume:
        _check_init(config.init)

    # 3. Data: every source scanned and checked before anything compiles.
    sample_rate = config.model.sample_rate
    data = load_data(config.data, sample_rate, warn=False)
    console(data.report.summary())

    # 4. Models and optimisers (fresh, from weights, or the checkpoint's below).
    schedule = config.schedule
    if resume:
        state = None
    else:
        generator, discriminator = _models(config, console)
        state = init_state(generator, discriminator, config.step)
        del generator, discriminator
    if leader and (not resume or num_iters is not None):
        _write_text(folder.config, dump_yaml(config))

    # 5. Shardings and restore.
    checkpoints = Checkpoints(folder, config)
    start, data_state = 0, None
    if resume:
        state, data_state, meta = checkpoints.restore(_abstract_state(config, replicated), console=console)
        start = int(meta["step"])
        console(f"resumed at step {start} from {folder.checkpoints / str(start)}")
    else:
        # Host values (the same on every process) placed on the mesh, replicated.
        state = jax.device_put(jax.device_get(state) if n_processes > 1 else state, replicated)
    if start >= schedule.num_iters:
        console(f"the run is at step {start} of {schedule.num_iters}: nothing to do (raise --steps to continue)")

    # 6. The loop.
    logs = _Logs(folder, start, leader)
    transform = data.transform
    validate = _val_function(state, config)
    key = jax.random.key(schedule.seed)
    batches = data.train_batches(start, process_index=process, process_count=n_processes, state=data_state)
    last_saved = checkpoints.steps()[-1] if resume and checkpoints.steps() else None
    train_metrics: dict[str, float] = {}
    val_metrics: dict[str, float] = {}
    stopped = "finished"
    pending: tuple[int, dict] | None = None  # the previous step's metrics, checked while this one runs
    samples_logged = False

    def settle() -> None:
        """Fetch the pending step's metrics: stop if one is not finite, else log them."""
        nonlocal pending, train_metrics
        if pending is None:
            return
        done, metrics = pending
        pending = None
        try:
            check_finite(metrics, done)
        except NonFiniteLossError as e:
            kept = f"checkpoint {last_saved} ({folder.checkpoints / str(last_saved)}) is kept" if last_saved \
                else "no checkpoint was written yet"
            raise TrainingError(f"{e}; training stopped, {kept}") from None
        train_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if leader and (done % schedule.log_freq == 0 or done == schedule.num_iters):
            logs.scalars(done, "train", train_metrics)
        if on_step is not None and leader:
            on_step(done, train_metrics)
        if bar is not None:
            bar.update(done - bar.n)
            bar.set_postfix_str(" ".join(f"{k.split('/')[-2] if '/' in k else k} {train_metrics[k]:.3f}"
                                         for k in ("mel/loss", "adv/gen_loss", "adv/disc_loss")))
        elif leader and (done % max(1, schedule.valid_freq // 10) == 0 or done == schedule.num_iters):
            rate = (done - start) / max(time.perf_counter() - started, 1e-9)
            eta = (schedule.num_iters - done) / rate if rate > 0 else math.inf
            console(f"step {done}/{schedule.num_iters} | {rate:.2f} steps/s | ETA {_duration(eta)} | "
                    f"mel {train_metrics['mel/loss']:.4f} | gen {train_metrics['adv/gen_loss']:.4f} | "
                    f"disc {train_metrics['adv/disc_loss']:.4f}")

    def run_validation(done: int) -> None:
        nonlocal val_metrics
        sums, count = {}, 0.0
        with data.val_batches(process_index=process, process_count=n_processes) as it:
            for batch in it:
                audio = transform(_global(batch.audio, batch_sharding),
                                  jax.tree.map(lambda a: _global(a, batch_sharding), batch.params))
                values, n, recons = validate(state.generator, audio, _global(batch.valid, batch_sharding))
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += float(n)
        val_metrics = {k: v / max(count, 1.0) for k, v in sums.items()}
        logs.scalars(done, "val", val_metrics)
        console(f"validation at step {done}: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(val_metrics.items())))

    def log_samples(done: int) -> None:
        """Reconstructions of the validation items ``val_idx`` (those in the first validation batch) as
        audio and mel images; the inputs too, the first time (the original's ``save_samples``)."""
        nonlocal samples_logged
        batch = data.val_batch(0, process, n_processes)
        audio = transform(_global(batch.audio, batch_sharding),
                          jax.tree.map(lambda a: _global(a, batch_sharding), batch.params))
        _, _, recons = validate(state.generator, audio, _global(batch.valid, batch_sharding))
        if n_processes > 1:  # rows live on every process's devices: gathered by all (a collective)
            from jax.experimental import multihost_utils

            audio, recons = multihost_utils.process_allgather((audio, recons), tiled=True)
        if leader:
            audio, recons = (np.asarray(jax.device_get(a)) for a in (audio, recons))
            _write_samples(done, audio, recons, first=not samples_logged)
        samples_logged = True

    def _write_samples(done: int, audio: np.ndarray, recons: np.ndarray, first: bool) -> None:
        for i in schedule.val_idx:
            if i >= audio.shape[0]:
                continue
            logs.audio(done, f"recons/sample_{i}.wav", recons[i, 0], sample_rate)
            logs.image(done, f"recons/mel_{i}", _mel_image(recons[i, 0], sample_rate))
            if first:
                logs.audio(done, f"signal/sample_{i}.wav", audio[i, 0], sample_rate)
                logs.image(done, f"signal/mel_{i}", _mel_image(audio[i, 0], sample_rate))

    def save(done: int, val_mel: float | None) -> None:
        nonlocal last_saved
        settle()  # never checkpoint a state whose step went non-finite
        meta = {"step": done, "seed": schedule.seed, "train": train_metrics,
                "val": val_metrics if val_mel is not None else {}, "data_fingerprint": data.fingerprint}
        try:
            checkpoints.save(state, batches.get_state(), meta, val_mel)
            if stop.requested:
                checkpoints.wait()
        except Exception as e:
            _disk_error(e, done)
        last_saved = done
        checkpoints.write_tags()

    def _disk_error(e: Exception, done: int):
        # Orbax writes into a temporary folder renamed on success, so a failed save leaves the previous
        # checkpoints as they were (the temporary folder is removed at the next start).
        cause = e if isinstance(e, OSError) else (e.__cause__ or e.__context__)
        if not isinstance(cause, OSError):
            raise e
        kept = f"checkpoint {last_saved} is kept" if last_saved else "no earlier checkpoint exists"
        what = "the disk is full" if cause.errno == errno.ENOSPC else (cause.strerror or str(cause))
        raise TrainingError(f"checkpoint {done} could not be written ({what}); {kept}; "
                            "free space and continue with --resume") from None

    bar = None
    started = time.perf_counter()
    try:
        with _Stop() as stop, contextlib.ExitStack() as cleanup:
            cleanup.callback(batches.close)
            if progress and start < schedule.num_iters:
                from tqdm import tqdm

                bar = tqdm(total=schedule.num_iters, initial=start, desc="train", unit="step", dynamic_ncols=True)
                cleanup.callback(bar.close)
            for index in range(start, schedule.num_iters):
                done = index + 1
                batch = next(batches)
                audio = transform(_global(batch.audio, batch_sharding),
                                  jax.tree.map(lambda a: _global(a, batch_sharding), batch.params))
                state, metrics = train_step(state, audio, jax.random.fold_in(key, index), check=False)
                settle()
                pending = (done, metrics)
                last = done == schedule.num_iters
                # The original validates after its iteration 0, then every valid_freq iterations, and
                # checkpoints after each validation; milestones and a stop request checkpoint too.
                validating = index % schedule.valid_freq == 0 or last
                if validating:
                    settle()
                    run_validation(done)
                if index % schedule.sample_freq == 0 or last:
                    settle()
                    log_samples(done)
                due = done % schedule.checkpoint_freq == 0 if schedule.checkpoint_freq else validating
                if due or last or done in schedule.save_iters or stop.requested:
                    save(done, val_metrics.get("mel/loss") if validating else None)
                if stop.requested:
                    stopped = "interrupted"
                    console(f"{stop.requested}: saved checkpoint {done} and stopped; continue with --resume")
                    break
            settle()
        try:
            checkpoints.wait()
        except Exception as e:
            _disk_error(e, last_saved or start)
        checkpoints.write_tags()
    finally:
        try:
            checkpoints.close()
        except OSError:
            pass
        logs.close()

    # 7. Export the latest generator and discriminator.
    exported = None
    done = int(jax.device_get(state.step))
    if stopped == "finished" and leader and done > 0:
        exported = _export_state(state, folder.export)
        console(f"exported step {done} to {exported}")
    console.close()
    return RunResult(done, stopped, last_saved, train_metrics, val_metrics, exported)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# --- export ------------------------------------------------------------------------------------------


def _export_state(state: TrainState, out: Path, overwrite: bool = True) -> Path:
    """``out/weights.safetensors`` (for ``jaxdac encode --weights``) and the original's two ``weights.pth``."""
    from jaxdac.train.export import save_original
    from jaxdac.weights import convert

    state = jax.device_get(state)
    generator = state.generator_model()
    out.mkdir(parents=True, exist_ok=True)
    convert.save(generator, out / "weights.safetensors", overwrite=overwrite)
    try:
        save_original(state, out, overwrite=overwrite)
    except ValueError as e:  # a discriminator the original cannot build: export the generator alone
        from jaxdac.train.export import save_generator_original

        save_generator_original(generator, out / "dac" / "weights.pth", overwrite=overwrite)
        print(f"jaxdac: note: discriminator not exported in the original's format: {e}", file=sys.stderr)
    return out


def export(run_dir: str | os.PathLike, out_dir: str | os.PathLike, tag: str = "latest", *,
           overwrite: bool = False) -> Path:
    """Export checkpoint ``tag`` (``latest``, ``best`` or a step number) of a run to ``out_dir``:
    ``weights.safetensors`` and the original's ``dac/weights.pth`` and ``discriminator/weights.pth``."""
    folder = RunFolder(Path(run_dir))
    if not folder.config.exists():
        raise TrainingError(f"{run_dir} is not a jaxdac run folder (no config.yml)")
    out = Path(out_dir)
    targets = [out / "weights.safetensors", out / "dac" / "weights.pth", out / "discriminator" / "weights.pth"]
    taken = [str(t) for t in targets if t.exists()]
    if taken and not overwrite:
        raise TrainingError(f"{taken[0]} exists (pass --overwrite to replace it)")
    config = load_config(folder.config)
    checkpoints = Checkpoints(folder, config)
    try:
        steps = checkpoints.steps()
        if not steps:
            raise TrainingError(f"{run_dir} has no checkpoint yet")
        if tag == "latest":
            step = steps[-1]
        elif tag == "best":
            if checkpoints.best is None or checkpoints.best[0] not in steps:
                raise TrainingError(f"{run_dir} has no best checkpoint (no validation has run)")
            step = checkpoints.best[0]
        else:
            try:
                step = int(tag)
            except ValueError:
                raise TrainingError(f"--tag must be latest, best or a step number, got {tag!r}") from None
            if step not in steps:
                raise TrainingError(f"{run_dir} has no checkpoint at step {step}; it has {', '.join(map(str, steps))}")
        replicated = NamedSharding(Mesh(np.array(jax.devices()[:1]), ("data",)), PartitionSpec())
        state, _, _ = checkpoints.restore(_abstract_state(config, replicated), step, console=lambda line: None)
    finally:
        checkpoints.close()
    return _export_state(state, out, overwrite=True)
