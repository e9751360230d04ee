"""``ultrarun dashboard``: a live, read-only view of a run in the browser (docs/dashboard.md).

A small HTTP server (the standard library's ``ThreadingHTTPServer``) serves one page, its script,
plotly.js from the ``plotly`` package (so it works offline) and a few JSON endpoints the page
polls: ``/api/poll`` (what changed since a cursor), ``/api/figures`` and ``/api/runs`` (a page of
the table). It reads the run's result directory as it grows (:class:`RunLog`) and, given the run's
id and working directory, asks the run's dispatcher for its workers and queue as ``ultrarun
status`` does. Where it sits among the roles: docs/architecture.md.
"""
from __future__ import annotations

import hmac
import importlib.resources
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .._files import dumps
from ..errors import ConfigurationError, UltrarunError
from ._follow import RunLog
from ._views import Filters, Space, figures, summary, table

logger = logging.getLogger(__name__)

#: Hosts that reach only this machine's own user sessions: no token needed there.
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: A poll reads the logs at most this often (seconds), however many pages are open.
MIN_READ_INTERVAL = 0.2
#: Seconds a client may take to send its request before its connection is closed.
REQUEST_TIMEOUT = 10.0
SPACE_FILE = "configspace.json"
_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/static/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
           "/static/dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}
_SECURITY_HEADERS = {
    # plotly.js's WebGL traces (parallel coordinates) compile their shaders' glue with
    # new Function: 'unsafe-eval'; scripts still come from this server only.
    "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-eval'; connect-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
                               "font-src 'self' data:; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: it goes nowhere else
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def plotly_js() -> bytes:
    """plotly.js as the ``plotly`` package ships it (so the page needs no network)."""
    try:
        return (importlib.resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ImportError("ultrarun dashboard needs plotly (its plotly.js): "
                          "pip install 'ultrarun[dashboard]'") from exc


def load_space(path: str | os.PathLike[str]) -> Space:
    """The log scales and categories of a ConfigSpace JSON file (``space.to_json(path)``)."""
    import ConfigSpace as CS

    path = Path(path)
    if path.is_symlink() or not path.is_file():
        raise ConfigurationError(f"{path} is not a regular file: give a ConfigSpace JSON file "
                                 "(written by ConfigurationSpace.to_json)")
    try:
        return Space.from_configspace(CS.ConfigurationSpace.from_json(path))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{path} is not a ConfigSpace JSON file: {exc}") from exc


class _DispatcherWatch:
    """The run's workers and queue, asked of its dispatcher every ``interval`` seconds in a
    thread of its own (``ultrarun status``'s :func:`collect_status`); only what the page shows
    is kept, never an address with a secret."""

    def __init__(self, run_id: str, host: str, port: int | None, secret: str | None,
                 interval: float):
        self.run_id, self.host, self.port, self.secret = run_id, host, port, secret
        self.interval = interval
        self.snapshot: dict[str, Any] = {"connected": False, "error": "not asked yet"}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ultrarun-dashboard-dispatcher",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from ..status import collect_status

        while not self._stop.is_set():
            try:
                status = collect_status(self.run_id, self.host, self.port, self.secret,
                                        timeout=min(2.0, self.interval))
                self.snapshot = _plain_status(status)
            except (UltrarunError, OSError) as exc:
                logger.info("dispatcher of run %s not reachable: %s", self.run_id, exc)
                self.snapshot = {"connected": False, "asked": time.time(),
                                 "error": f"{type(exc).__name__}: {exc}"}
            self._stop.wait(self.interval)

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _plain_status(status: dict[str, Any]) -> dict[str, Any]:
    d = status.get("dispatcher")
    workers = [{k: w.get(k) for k in ("name", "host", "pid", "state", "jobs_done", "last_seen")}
               | {"job": None if not w.get("job") else {"id": w["job"].get("id"),
                                                        "budget": w["job"].get("budget")}}
               for w in status.get("workers", [])]
    return {"connected": True, "asked": time.time(), "workers": workers,
            "dispatcher": None if d is None else {
                "queued": d.get("queued"), "running": d.get("running"),
                "finished": d.get("finished"), "late_results": d.get("late_results")}}


class Dashboard:
    """The dashboard of the run in ``directory``, served on ``host``:``port`` (0: any free port).

    Read-only. Bound to the loopback address by default; bound to any other address a random
    token (or ``token``) must be in every URL, and :attr:`url` carries it. With ``run_id`` and
    ``working_dir`` (the credentials file) or ``nameserver`` it also shows the dispatcher's
    workers and queue. A context manager; ``shutdown`` is idempotent.
    """

    def __init__(self, directory: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, run_id: str | None = None,
                 working_dir: str | os.PathLike[str] | None = None,
                 nameserver: tuple[str, int | None] | None = None, secret: str | None = None,
                 space: str | os.PathLike[str] | None = None, dispatcher_interval: float = 2.0):
        self.directory = Path(directory)
        self.log = RunLog(self.directory, run_id=run_id)
        self.host, self.port = host, port
        self.token = token if token is not None else (None if host in LOOPBACK
                                                      else secrets.token_urlsafe(24))
        if self.token is not None and len(self.token) < 16:
            raise ConfigurationError("a dashboard token must have at least 16 characters")
        space_file = Path(space) if space is not None else self.directory / SPACE_FILE
        self.space = load_space(space_file) if space is not None or space_file.exists() else Space()
        self.run_id, self.working_dir, self.nameserver = run_id, working_dir, nameserver
        self.secret = secret
        self.dispatcher_interval = dispatcher_interval
        self._lock = threading.Lock()  # the RunLog: one reader or updater at a time
        self._figures_lock = threading.Lock()  # the figures' cache
        self._table_order: dict[str, Any] = {}  # the table's last order (pages turn fast)
        self._read_at = 0.0
        self._figures: dict[tuple, tuple[int, float, float, bytes]] = {}
        self._watch: _DispatcherWatch | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._redact: list[str] = []

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> "Dashboard":
        if self._server is not None:
            return self
        plotly_js()  # fail now, not on the first page load
        if self.run_id is not None and (self.working_dir is not None or self.nameserver):
            self._watch = self._make_watch()
        server_class = _Server6 if ":" in self.host else _Server
        self._server = server_class((self.host, self.port), _handler(self))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="ultrarun-dashboard", daemon=True)
        self._thread.start()
        if self._watch is not None:
            self._watch.start()
        logger.info("dashboard of %s at %s", self.directory, self.url)
        return self

    def _make_watch(self) -> _DispatcherWatch:
        from ..status import read_credentials

        if self.working_dir is not None:
            creds = read_credentials(self.working_dir, str(self.run_id))
            host, port, secret = creds.host, creds.port, self.secret or creds.secret
        else:
            (host, port), secret = self.nameserver, self.secret  # type: ignore[misc]
        if secret:
            self._redact.append(secret)
        return _DispatcherWatch(str(self.run_id), host, port, secret, self.dispatcher_interval)

    def shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._watch is not None:
            self._watch.shutdown()
            self._watch = None

    def __enter__(self) -> "Dashboard":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    @property
    def url(self) -> str:
        """Where to open the page (with the token, if one is needed; on all interfaces, by this
        machine's name)."""
        host = socket.getfqdn() if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        query = f"?token={self.token}" if self.token else ""
        return f"http://{host}:{self.port}/{query}"

    # ----------------------------------------------------------------------- the data
    def _fresh(self) -> None:
        """Read what the logs gained (caller holds the lock), at most every
        :data:`MIN_READ_INTERVAL` seconds."""
        now = time.monotonic()
        if now - self._read_at >= MIN_READ_INTERVAL:
            self.log.update()
            self._read_at = now

    def poll(self, cursor: int) -> dict[str, Any]:
        """The summary, the dispatcher's picture and how many runs came after ``cursor``."""
        with self._lock:
            self._fresh()
            out = {"version": self.log.version, "cursor": len(self.log.runs),
                   "new": max(0, len(self.log.runs) - cursor), "summary": summary(self.log)}
        if self._watch is not None:
            out["dispatcher"] = self._watch.snapshot
        return out

    def figures_json(self, filters: Filters) -> bytes:
        """The figures for ``filters``, made once per version of the logs; a large run's are
        made again at most every three times as long as they took."""
        key = filters.key()
        with self._figures_lock:  # one figure maker at a time; polls go on meanwhile
            with self._lock:
                self._fresh()
                cached = self._figures.get(key)
                now = time.monotonic()
                if cached is not None and (cached[0] == self.log.version
                                           or now - cached[1] < 3 * cached[2]):
                    return cached[3]
                view = self.log.snapshot()
            payload = {"version": view.version, "figures": figures(view, filters, self.space)}
            body = self._encode(payload)
            if len(self._figures) > 16:
                self._figures.clear()
            self._figures[key] = (view.version, now, time.monotonic() - now, body)
            return body

    def runs(self, filters: Filters, **page: Any) -> dict[str, Any]:
        with self._lock:
            self._fresh()
            view = self.log.snapshot()
        return {"version": view.version} | table(view, filters, cache=self._table_order, **page)

    def _encode(self, value: Any) -> bytes:
        try:
            text = json.dumps(value, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError):
            text = dumps(value)  # non-finite numbers to null, odd values to their repr
        for secret in self._redact:  # a secret a user's error message printed stays here
            text = text.replace(secret, "[secret]")
        return text.encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request is no error of the server's."""
        logger.debug("request from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _handler(dashboard: Dashboard) -> type[BaseHTTPRequestHandler]:
    static_dir = importlib.resources.files(__name__) / "static"
    cache: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        server_version = "ultrarun-dashboard"
        sys_version = ""
        timeout = REQUEST_TIMEOUT
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s %s", self.client_address[0], format % args)

        def do_GET(self) -> None:
            self._serve(head=False)

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def _refuse_method(self) -> None:
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, b'{"error": "read-only: GET only"}',
                       "application/json", extra={"Allow": "GET, HEAD"})

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

        def _serve(self, head: bool) -> None:
            path, _, raw_query = self.path.partition("?")  # the path as sent: no netloc parsing
            query = parse_qs(raw_query, keep_blank_values=True)
            if path == "/favicon.ico":  # what a browser asks for by itself, without the token:
                return self._send(HTTPStatus.NO_CONTENT, b"", "text/plain", head=head)  # no data
            if not self._allowed(query):
                return
            try:
                if path in _STATIC:
                    name, kind = _STATIC[path]
                    if name not in cache:
                        cache[name] = (static_dir / name).read_bytes()
                    body = cache[name]
                    if name == "index.html" and dashboard.token:  # its scripts need it too
                        body = re.sub(rb'"(/static/[\w.]+)"', lambda m: b'"' + m.group(1) +
                                      b"?token=" + dashboard.token.encode() + b'"', body)
                    return self._send(HTTPStatus.OK, body, kind, head=head)
                if path == "/static/plotly.min.js":
                    if "plotly" not in cache:
                        cache["plotly"] = plotly_js()
                    return self._send(HTTPStatus.OK, cache["plotly"], "text/javascript",
                                      head=head, static=True)
                if path == "/api/poll":
                    cursor = int(_one(query, "cursor", "0"))
                    return self._json(dashboard._encode(dashboard.poll(cursor)), head)
                if path == "/api/figures":
                    return self._json(dashboard.figures_json(Filters.parse(query)), head)
                if path == "/api/runs":
                    sort = _one(query, "sort", "finished")
                    page = dashboard.runs(
                        Filters.parse(query), sort=sort, descending=_one(query, "order", "desc") != "asc",
                        offset=int(_one(query, "offset", "0")), limit=int(_one(query, "limit", "50")),
                        search=_one(query, "q", "")[:200])
                    return self._json(dashboard._encode(page), head)
            except ValueError as exc:
                return self._send(HTTPStatus.BAD_REQUEST, dashboard._encode({"error": str(exc)}),
                                  "application/json", head=head)
            # Nothing else is served: no file of the directory (the credentials file is beside
            # the logs) and nothing outside it, whatever the path says.
            self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}', "application/json",
                       head=head)

        def _allowed(self, query: dict[str, list[str]]) -> bool:
            if dashboard.token is not None:
                given = _one(query, "token", "")
                if not hmac.compare_digest(given.encode(), dashboard.token.encode()):
                    self._send(HTTPStatus.FORBIDDEN, b"403: this dashboard needs the token that "
                               b"`ultrarun dashboard` printed with its URL\n", "text/plain")
                    return False
                return True
            # Loopback without a token: a page from another site must not read it through a
            # name that resolves to 127.0.0.1 (DNS rebinding): the Host header must be ours.
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
            if not _is_loopback(host):
                self._send(HTTPStatus.FORBIDDEN, b"403: unexpected Host header\n", "text/plain")
                return False
            return True

        def _json(self, body: bytes, head: bool) -> None:
            self._send(HTTPStatus.OK, body, "application/json", head=head)

        def _send(self, status: HTTPStatus, body: bytes, kind: str, head: bool = False,
                  static: bool = False, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=3600, private" if static else "no-store")
            for key, value in (_SECURITY_HEADERS | (extra or {})).items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler


def _one(query: dict[str, list[str]], key: str, default: str) -> str:
    values = query.get(key)
    return values[-1] if values else default


__all__ = ["Dashboard", "RunLog", "load_space", "plotly_js"]
