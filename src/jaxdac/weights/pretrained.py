"""The released DAC weights: where they are published and a local cache.

The four releases of the original (``dac/utils/__init__.py``) are GitHub release assets; ``"latest"`` names
the one tag each model has. Files are cached as ``weights_<type>_<bitrate>_<tag>.pth`` under
``$JAXDAC_CACHE_DIR`` (default ``~/.cache/jaxdac``); a cached file is used without any network access.
"""

from __future__ import annotations

import http.client
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

__all__ = ["DownloadError", "RELEASES", "download", "release_url", "resolve_tag", "cache_path", "default_cache_dir"]

_BASE_URL = "https://github.com/descriptinc/descript-audio-codec/releases/download"

# (model type, bitrate) -> (tag, file name) of the release.
RELEASES: dict[tuple[str, str], tuple[str, str]] = {
    ("44khz", "8kbps"): ("0.0.1", "weights.pth"),
    ("24khz", "8kbps"): ("0.0.4", "weights_24khz.pth"),
    ("16khz", "8kbps"): ("0.0.5", "weights_16khz.pth"),
    ("44khz", "16kbps"): ("1.0.0", "weights_44khz_16kbps.pth"),
}


class DownloadError(RuntimeError):
    """The weights could not be fetched; nothing was written to the cache."""


_HINT = "pass a local file with --weights / load_model(path=...)"


def resolve_tag(model_type: str = "44khz", bitrate: str = "8kbps", tag: str = "latest") -> str:
    """The release tag for a model, checking that the combination exists (``ValueError`` listing choices).

    Names are case-insensitive, as in the original (``"44kHz"`` is ``"44khz"``).
    """
    model_type, bitrate, tag = model_type.lower(), bitrate.lower(), tag.lower()
    types = sorted({t for t, _ in RELEASES})
    if model_type not in types:
        raise ValueError(f"unknown model type {model_type!r}; choose one of {', '.join(types)}")
    bitrates = sorted(b for t, b in RELEASES if t == model_type)
    if bitrate not in bitrates:
        raise ValueError(f"no {bitrate!r} model for {model_type}; choose one of {', '.join(bitrates)}")
    release_tag = RELEASES[(model_type, bitrate)][0]
    if tag not in ("latest", release_tag):
        raise ValueError(f"no tag {tag!r} for the {model_type} {bitrate} model; choose latest or {release_tag}")
    return release_tag


def release_url(model_type: str = "44khz", bitrate: str = "8kbps", tag: str = "latest") -> str:
    tag = resolve_tag(model_type, bitrate, tag)
    return f"{_BASE_URL}/{tag}/{RELEASES[(model_type.lower(), bitrate.lower())][1]}"


def default_cache_dir() -> Path:
    """``$JAXDAC_CACHE_DIR`` if set, else ``~/.cache/jaxdac``."""
    return Path(os.environ.get("JAXDAC_CACHE_DIR") or Path.home() / ".cache" / "jaxdac").expanduser()


def cache_path(
    model_type: str = "44khz", bitrate: str = "8kbps", tag: str = "latest", *, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Where :func:`download` keeps (or would keep) these weights."""
    tag = resolve_tag(model_type, bitrate, tag)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / f"weights_{model_type.lower()}_{bitrate.lower()}_{tag}.pth"


def download(
    model_type: str = "44khz",
    bitrate: str = "8kbps",
    tag: str = "latest",
    *,
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool = True,
    url: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Return the local path of the released weights, downloading them once.

    A cached file is returned without touching the network unless ``force``. ``url`` fetches from another
    address (a mirror) instead of the GitHub release. The download goes to a temporary file in the cache
    directory, which replaces the target only when complete, so an interrupted or failed download never
    leaves a partial ``.pth``; failures raise :class:`DownloadError` with one line saying what to do.
    """
    tag = resolve_tag(model_type, bitrate, tag)
    model_type, bitrate = model_type.lower(), bitrate.lower()
    target = cache_path(model_type, bitrate, tag, cache_dir=cache_dir)
    if target.is_file() and not force:
        return target
    source = url or release_url(model_type, bitrate, tag)
    what = f"{model_type} {bitrate} weights (tag {tag}) from {source}"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with urllib.request.urlopen(source, timeout=timeout) as response, open(tmp, "xb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name,
                      disable=not progress) as bar:
                received = 0
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if total is not None and received != total:
            raise DownloadError(
                f"could not download {what}: the connection closed after {received} of {total} bytes; "
                f"try again or {_HINT}"
            )
        with open(tmp, "rb") as f:
            if f.read(4) != b"PK\x03\x04":  # torch.save zip archive; an HTML error page is not weights
                raise DownloadError(f"could not download {what}: the server did not send a PyTorch checkpoint; {_HINT}")
        os.replace(tmp, target)
    except DownloadError:
        raise
    except urllib.error.HTTPError as e:
        raise DownloadError(f"could not download {what}: HTTP {e.code} {e.reason}; {_HINT}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise DownloadError(
            f"could not download {what}: {reason}; check your connection or {_HINT}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
