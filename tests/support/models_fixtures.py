"""Shared helpers for the ``cloak.models`` tests: photo crops, a loopback hub."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from support.paths import PHOTOS

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def photo_crop(name: str = "astronaut.png", top: int = 100, left: int = 180, size: int = 128):
    """A (1, 3, size, size) float crop of a shared photo, in [0, 1]."""
    path = PHOTOS / name
    assert path.is_file(), f"test photo missing: {path}"
    img = np.asarray(Image.open(path).convert("RGB"))
    crop = img[top : top + size, left : left + size].copy()
    return torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255


class FakeHub:
    """A loopback HTTP server answering like the Hugging Face hub's ``resolve`` endpoint.

    ``files`` maps ``(repo_id, filename)`` to bytes; ``hits`` counts every request.
    """

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytes] = {}
        self.hits = 0
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _lookup(self) -> bytes | None:
                hub.hits += 1
                parts = self.path.split("?")[0].lstrip("/").split("/")
                if "resolve" not in parts:
                    return None
                i = parts.index("resolve")
                repo, filename = "/".join(parts[:i]), "/".join(parts[i + 2 :])
                return hub.files.get((repo, filename))

            def _headers(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
                data = self._lookup()
                if data is None:
                    self.send_error(404)
                    return
                self._headers(data)

            def do_GET(self) -> None:  # noqa: N802
                data = self._lookup()
                if data is None:
                    self.send_error(404)
                    return
                self._headers(data)
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """A running :class:`FakeHub`, with HF_ENDPOINT and the user cache pointed into tmp_path."""
    hub = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; the suite's conftest may set it
    # before anything imports the hub, so put the hub's own flag in line with the environment.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("CLOAK_MODELS_DIR", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    cache = tmp_path / "cache"
    monkeypatch.setattr("cloak.models.weights.user_models_dir", lambda: cache)
    try:
        yield hub
    finally:
        hub.close()
