"""Release table and download cache, tested against a local HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import pytest

from jaxdac.weights import pretrained
from jaxdac.weights.pretrained import DownloadError, cache_path, download, release_url, resolve_tag

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_weight_norm.pth"


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    # urllib honours proxy variables; the tests must talk to 127.0.0.1 directly.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


class Server:
    """A threaded HTTP server on 127.0.0.1 answering from a dict ``path -> (status, headers, body)``."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]]):
        self.routes = routes
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                status, headers, body = outer.routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                headers = {"Content-Length": str(len(body)), **headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server():
    srv = Server({"/weights.pth": (200, {}, FIXTURE.read_bytes())})
    yield srv
    srv.stop()


def closed_port() -> int:
    """A localhost port with nothing listening: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_release_table_matches_the_original():
    base = "https://github.com/descriptinc/descript-audio-codec/releases/download"
    assert release_url() == f"{base}/0.0.1/weights.pth"
    assert release_url("44khz", "8kbps", "0.0.1") == f"{base}/0.0.1/weights.pth"
    assert release_url("24khz") == f"{base}/0.0.4/weights_24khz.pth"
    assert release_url("16khz") == f"{base}/0.0.5/weights_16khz.pth"
    assert release_url("44khz", "16kbps") == f"{base}/1.0.0/weights_44khz_16kbps.pth"
    assert resolve_tag("44khz", "16kbps", "latest") == "1.0.0"
    assert release_url("44kHz", "16KBPS", "LATEST") == f"{base}/1.0.0/weights_44khz_16kbps.pth"


@pytest.mark.parametrize(
    "args, message",
    [
        (("48khz", "8kbps", "latest"), "unknown model type '48khz'; choose one of 16khz, 24khz, 44khz"),
        (("24khz", "16kbps", "latest"), "no '16kbps' model for 24khz; choose one of 8kbps"),
        (("44khz", "8kbps", "1.0.0"), "no tag '1.0.0' for the 44khz 8kbps model; choose latest or 0.0.1"),
    ],
)
def test_unknown_choices_list_the_valid_ones(tmp_path, args, message):
    with pytest.raises(ValueError, match=message):
        download(*args, cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXDAC_CACHE_DIR", str(tmp_path / "env"))
    assert cache_path("24khz") == tmp_path / "env" / "weights_24khz_8kbps_0.0.4.pth"
    assert cache_path("44kHz", "16kbps", cache_dir=tmp_path) == tmp_path / "weights_44khz_16kbps_1.0.0.pth"
    monkeypatch.delenv("JAXDAC_CACHE_DIR")
    assert cache_path() == Path.home() / ".cache" / "jaxdac" / "weights_44khz_8kbps_0.0.1.pth"


def test_download_then_cache_hit_without_network(tmp_path, server, capsys, monkeypatch):
    # Should the cache be missed, the release URL must point nowhere rather than at GitHub.
    monkeypatch.setattr(pretrained, "_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    url = server.url("/weights.pth")
    path = download(cache_dir=tmp_path, url=url, progress=True)
    assert path == tmp_path / "weights_44khz_8kbps_0.0.1.pth"
    assert path.read_bytes() == FIXTURE.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
    assert server.requests == ["/weights.pth"]
    assert "weights_44khz_8kbps_0.0.1.pth" in capsys.readouterr().err  # the progress bar
    server.stop()
    # The server is gone: a cached file needs no network, neither with nor without url=.
    assert download(cache_dir=tmp_path, progress=False) == path
    assert download(cache_dir=tmp_path, url=url, progress=False) == path
    assert server.requests == ["/weights.pth"]


def test_env_cache_dir_is_used(tmp_path, server, monkeypatch):
    monkeypatch.setenv("JAXDAC_CACHE_DIR", str(tmp_path / "nested" / "cache"))
    path = download("16khz", url=server.url("/weights.pth"), progress=False)
    assert path == tmp_path / "nested" / "cache" / "weights_16khz_8kbps_0.0.5.pth" and path.is_file()


def test_force_downloads_again_and_failure_keeps_the_cached_file(tmp_path, server):
    url = server.url("/weights.pth")
    path = download(cache_dir=tmp_path, url=url, progress=False)
    path.write_bytes(b"PK\x03\x04 stale")
    download(cache_dir=tmp_path, url=url, force=True, progress=False)
    assert path.read_bytes() == FIXTURE.read_bytes() and len(server.requests) == 2
    path.write_bytes(b"PK\x03\x04 stale")
    with pytest.raises(DownloadError):
        download(cache_dir=tmp_path, url=f"http://127.0.0.1:{closed_port()}/w.pth", force=True, progress=False)
    assert path.read_bytes() == b"PK\x03\x04 stale"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_offline_gives_one_clear_line_and_no_file(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/weights.pth"
    with pytest.raises(DownloadError) as info:
        download(cache_dir=tmp_path, url=url, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"could not download 44khz 8kbps weights (tag 0.0.1) from {url}: ")
    assert "refused" in message.lower()
    assert message.endswith("check your connection or pass a local file with --weights / load_model(path=...)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "route, message",
    [
        ((404, {}, b"nope"), "HTTP 404"),
        ((200, {}, b"<html>sign in to the wifi</html>"), "did not send a PyTorch checkpoint"),
        ((200, {"Content-Length": "100000"}, b"PK\x03\x04 short"), "closed after 10 of 100000 bytes"),
    ],
)
def test_bad_responses_leave_nothing(tmp_path, route, message):
    srv = Server({"/w.pth": route})
    try:
        with pytest.raises(DownloadError, match=message):
            download(cache_dir=tmp_path, url=srv.url("/w.pth"), progress=False, timeout=10)
    finally:
        srv.stop()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_no_partial_file(tmp_path, server, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(pretrained.os, "replace", fail)
    with pytest.raises(DownloadError, match="No space left on device"):
        download(cache_dir=tmp_path, url=server.url("/weights.pth"), progress=False)
    assert list(tmp_path.iterdir()) == []
