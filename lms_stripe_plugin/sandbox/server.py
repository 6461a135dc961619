"""Running the sandbox on a real socket, in a background thread."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_app
from .state import SandboxState


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not log every request (tests run many)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SandboxServer:
    """A sandbox served by werkzeug on ``host:port`` (port 0 picks a free port).

    Use ``start()``/``stop()`` or ``with SandboxServer(...) as server:``; keyword
    arguments go to :func:`create_app`.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *, quiet: bool = True, **create_app_kwargs: Any) -> None:
        self.host = host
        self.port = port
        self.app: Flask = create_app(**create_app_kwargs)
        self._quiet = quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SandboxState:
        """The sandbox state (objects, events, deliveries)."""
        return self.app.extensions["stripe_sandbox"]

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (pass it as the SDK's ``api`` base address)."""
        if self._server is None:
            raise RuntimeError("The sandbox server is not started.")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> SandboxServer:
        """Bind the socket and serve from a daemon thread."""
        if self._server is not None:
            return self
        handler = _QuietHandler if self._quiet else WSGIRequestHandler
        self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="stripe-sandbox-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled requests and end the background threads."""
        self.state.close()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
