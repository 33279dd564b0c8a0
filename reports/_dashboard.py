"""optuna-dashboard on a run: the CLI line to run it, or a server in this process.

The dashboard reads the same Optuna storage the search writes, live. It must never make the
search fail, so it opens the storage the way a reader should: SQLite through the URL as is,
without creating tables or migrating the schema (the search owns that), with a busy timeout so a
read that meets a commit waits instead of failing; its GET requests hold only short read
transactions, never a write lock. A journal file is read without taking the writers' lock.
It binds the loopback address unless the user asks for another host.

optuna-dashboard 0.21 takes a journal file as a plain path (it guesses the journal backend
when the path is an existing non-SQLite file); `dashboard_command` also passes
``--storage-class JournalFileStorage`` so the line works before the first trial is written.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from snnprune.errors import UserError
from snnprune.search._storage import check_journal, check_optuna_sqlite, is_url, open_rdb, redact, sqlite_file

from ._runs import RunRef, resolve_run, storage_kind

__all__ = ["DashboardServer", "dashboard_command", "dashboard_storage", "serve_dashboard"]

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = ("0.0.0.0", "::")


def _spec(storage: str | os.PathLike | RunRef) -> str:
    """A storage spec from a spec, a `RunRef`, or a run folder (``runs/<study>``)."""
    if isinstance(storage, RunRef):
        return storage.storage
    text = str(storage)
    if not is_url(text) and Path(text).is_dir():
        return resolve_run(text).storage
    return text


def _executable() -> str:
    """The optuna-dashboard script next to this interpreter (a venv need not be activated)."""
    beside = Path(sys.executable).with_name("optuna-dashboard")
    return str(beside) if beside.is_file() else shutil.which("optuna-dashboard") or "optuna-dashboard"


def dashboard_command(storage_spec: str | os.PathLike | RunRef, host: str = LOOPBACK,
                      port: int = 8080) -> list[str]:
    """The optuna-dashboard command line for a storage (print it with `redact`: it holds the URL).

    >>> dashboard_command("sqlite:///runs/demo/study.db")[1:]  # doctest: +SKIP
    ['sqlite:///runs/demo/study.db', '--host', '127.0.0.1', '--port', '8080']
    """
    spec = _spec(storage_spec)
    command = [_executable(), spec, "--host", host or LOOPBACK, "--port", str(int(port))]
    if storage_kind(spec) == "journal":
        command += ["--storage-class", "JournalFileStorage"]
    return command


def dashboard_storage(storage_spec: str | os.PathLike | RunRef) -> optuna.storages.BaseStorage:
    """The storage as the dashboard should hold it: read-mostly, never creating or migrating."""
    spec = _spec(storage_spec)
    kind = storage_kind(spec)
    if kind == "journal":
        if not Path(spec).is_file():
            raise UserError(f"journal file {spec} does not exist")
        check_journal(Path(spec), spec)  # a SQLite file given without sqlite:///, a log, a model
        return JournalStorage(JournalFileBackend(spec))
    if kind == "sqlite":
        path = sqlite_file(spec)
        if path is None or not path.is_file():
            raise UserError(f"storage {redact(spec)} does not exist")
        _check_sqlite(spec)
    engine: dict[str, Any] = ({"connect_args": {"timeout": 30}} if kind == "sqlite" else {"pool_pre_ping": True})
    # opened beside a search that is creating the database, it races the search's schema stamp
    return open_rdb(spec, lambda: RDBStorage(spec, engine_kwargs=engine, skip_compatibility_check=True,
                                             skip_table_creation=True))


def _check_sqlite(spec: str) -> None:
    """A SQLite file the dashboard can show, checked without writing to it: Optuna's handle would
    stamp a schema version into an empty file, write its whole schema into another program's
    database, and say only "An exception is raised during the commit" of a file that is no
    database (`check_optuna_sqlite` refuses the last two)."""
    if not check_optuna_sqlite(spec):
        raise UserError(f"storage {redact(spec)} holds no Optuna study yet (a search creates its tables when "
                        "it starts)")


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    """One thread per request, as optuna-dashboard's own wsgiref server does."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """Request lines would bury the URL line and the search's progress bars."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@dataclass
class DashboardServer:
    """A dashboard served from a thread (``block=False``): its URL, and `stop` to end it."""

    url: str
    host: str
    port: int
    server: WSGIServer = field(repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(app: Any, host: str, port: int) -> WSGIServer:
    server_class = _ThreadedServer
    if ":" in host:  # an IPv6 address
        server_class = type("_ThreadedServer6", (_ThreadedServer,), {"address_family": socket.AF_INET6})
    try:
        return make_server(host, int(port), app, server_class=server_class, handler_class=_QuietHandler)
    except (OSError, OverflowError) as exc:  # OverflowError: a port outside 0-65535
        # the host is at fault when it does not resolve or is not this machine's; else the port
        advice = "check --host" if isinstance(exc, socket.gaierror) or getattr(exc, "errno", None) == \
            errno.EADDRNOTAVAIL else "choose another --port"
        raise UserError(f"cannot serve the dashboard on {host}:{port}: {getattr(exc, 'strerror', None) or exc}; "
                        f"{advice}") from None


def serve_dashboard(storage_spec: str | os.PathLike | RunRef, host: str = LOOPBACK, port: int = 8080, *,
                    block: bool = True, quiet: bool = False) -> DashboardServer:
    """Serve optuna-dashboard on ``host:port`` in this process, printing its URL.

    ``block=True`` serves until Ctrl-C; ``block=False`` serves from a daemon thread and returns
    the `DashboardServer` (port 0 picks a free port; ``server.port`` says which). Binds all
    interfaces only when ``host`` says so explicitly, and then says so.
    """
    from optuna_dashboard import wsgi

    host = str(host or LOOPBACK)
    storage = dashboard_storage(storage_spec)
    server = _bind(wsgi(storage), host, port)
    bound = int(server.server_address[1])
    shown = f"[{host}]" if ":" in host else host
    handle = DashboardServer(url=f"http://{shown}:{bound}/", host=host, port=bound, server=server)
    if not quiet:
        print(f"optuna-dashboard for {redact(_spec(storage_spec))} at {handle.url}", flush=True)
        if host in ALL_INTERFACES:
            print("note: listening on every interface; anyone who can reach this machine can open it",
                  flush=True)
    if not block:
        handle.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                         name="optuna-dashboard", daemon=True)
        handle.thread.start()
        return handle
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return handle
