"""Atomic, no-clobber file output: every file jaxdac writes goes through :func:`atomic_output`."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file in the same directory, moved into place on success.

    A reader never sees a half-written file and a failure leaves nothing behind. Without ``overwrite``
    an existing ``path`` is an error, checked before writing and again at the final link, so a file
    that appears meanwhile is never clobbered.
    """
    path = Path(path)
    exists = FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    if path.exists() and not overwrite:
        raise exists
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            # O_EXCL: never write through an existing file or link; mode 0o666 is reduced by the umask.
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as e:  # name the target, not the temporary file
            raise type(e)(e.errno, f"cannot write {path}: {e.strerror or e}") from None
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            # A hard link fails if path appeared since the check above; filesystems without hard links
            # fall back to check-then-replace.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise exists from None
            except OSError:
                if path.exists():
                    raise exists from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
