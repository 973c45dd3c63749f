"""Several processes (hosts) working on one job: joining them, and waiting for all of them.

Standard library and JAX only, so that commands without the training extras (``jaxdac encode``) can use
it as well as ``jaxdac train``.
"""

from __future__ import annotations

import os

import jax


def initialize_distributed() -> tuple[int, int]:
    """Join the other processes of a multi-host run, if this is one; returns ``(process index, count)``.

    Recognised, in this order: JAX's own variables (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
    ``JAX_PROCESS_ID``); ``torchrun``-style ones (``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``,
    ``RANK``); SLURM (``srun`` with more than one task: ``SLURM_NTASKS``, JAX reads the rest). Nothing is
    done for a single process. Call before anything touches a device.
    """
    env = os.environ
    if jax.distributed.is_initialized():  # by the caller (asking jax.process_count() would start the backend)
        return jax.process_index(), jax.process_count()
    if env.get("JAX_COORDINATOR_ADDRESS"):
        jax.distributed.initialize(env["JAX_COORDINATOR_ADDRESS"], int(env["JAX_NUM_PROCESSES"]),
                                   int(env["JAX_PROCESS_ID"]))
    elif env.get("MASTER_ADDR") and int(env.get("WORLD_SIZE", "1")) > 1:
        jax.distributed.initialize(f"{env['MASTER_ADDR']}:{env.get('MASTER_PORT', '29500')}",
                                   int(env["WORLD_SIZE"]), int(env["RANK"]))
    elif int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        jax.distributed.initialize()
    return jax.process_index(), jax.process_count()


def barrier(name: str) -> None:
    """Return when every process has reached ``barrier(name)`` (at once with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
