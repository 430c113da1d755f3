"""`cliproxy-mgmt serve`: the app under waitress, sized for slow and idle clients.

Waitress's defaults let about 100 connections that send half a request and stop lock every
other client out (its `connection_limit` is 100 and an idle channel lives 120 s). Here the
limit is higher, idle channels are closed sooner and the poll() loop is used, so several
hundred idle connections leave room for real requests; what limits a single address
belongs in front (nginx's `limit_conn`, `client_header_timeout`, docs/operations.md).
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import socket
from dataclasses import dataclass

from . import __version__
from .config import DEFAULT_PORT

log = logging.getLogger(__name__)

DEFAULT_THREADS = 8
DEFAULT_CONNECTION_LIMIT = 1000
DEFAULT_CHANNEL_TIMEOUT = 30  # seconds a connection may stay silent (waitress: 120)
CLEANUP_INTERVAL = 5  # seconds between two sweeps for silent connections (waitress: 30)


class StartupError(Exception):
    """An operator mistake found at start-up: printed as one line, never a traceback."""


@dataclass
class ServeOptions:
    config: str
    host: str | None = None
    port: int | None = None
    threads: int = DEFAULT_THREADS
    connection_limit: int = DEFAULT_CONNECTION_LIMIT
    channel_timeout: int = DEFAULT_CHANNEL_TIMEOUT
    local_password: str = ""


def listen_address(data: dict, options: ServeOptions) -> tuple[str, int]:
    """(host, port): the options' values, else the config's (host "" = every interface)."""
    host = options.host if options.host is not None else str(data.get("host") or "")
    port = options.port
    if port is None:
        configured = data.get("port")
        port = configured if isinstance(configured, int) and not isinstance(configured, bool) \
            and 0 < configured < 65536 else DEFAULT_PORT
    return host, port


def _listen_spec(host: str, port: int) -> str:
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"


def _raise_fd_limit(wanted: int) -> None:
    """Let the process hold `wanted` sockets (plus files) when the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + 256
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


_M_ARENA_MAX = -8  # glibc's mallopt() parameter number


def _one_malloc_arena() -> bool:
    """Have glibc's malloc give every thread the same arena (as MALLOC_ARENA_MAX=1 would),
    unless the operator set MALLOC_ARENA_MAX. True when it was set here.

    By default each worker thread gets an arena of its own, which hands the pages of a
    freed block of megabytes back to the system; the next write of a large config then
    maps and faults in fresh pages for its text and bytes, about a millisecond per write at
    10,000 entries. The GIL already lets one thread at a time run Python, so one arena costs
    little waiting (C code that lets go of the GIL, such as libpq or bcrypt, may still
    wait), and the process keeps fewer idle pages. Elsewhere (musl, macOS) nothing is done."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_ARENA_MAX, 1))
    except (OSError, AttributeError):
        return False


def management_status(state, options: ServeOptions) -> str:
    """Whether the Management API is on, and why (for the start-up summary)."""
    from .security.guard import env_password

    reasons = []
    if state.store.get("remote-management", "secret-key"):
        reasons.append("remote-management.secret-key")
    if env_password():
        reasons.append("MANAGEMENT_PASSWORD")
    if options.local_password:
        reasons.append("--local-password")
    if not reasons:
        return ("off: every /v0/management route answers 404; set remote-management.secret-key "
                "in the config, MANAGEMENT_PASSWORD, or --local-password to enable it")
    remote = state.store.get("remote-management", "allow-remote") is True or bool(env_password())
    return f"on ({', '.join(reasons)}; remote clients {'allowed' if remote else 'refused'})"


def _summary(app, options: ServeOptions, url: str) -> None:
    from .plugin_manager import describe_plugins

    state = app.extensions["cliproxy_mgmt"]
    plugins = ", ".join(f"{p['name']} {p['version'] or '?'}" for p in describe_plugins(state.pm))
    log.info("cliproxy-mgmt %s", __version__)
    log.info("config: %s", state.store.path)
    log.info("listening on %s (threads %d, connection limit %d, idle timeout %ds)", url,
             options.threads, options.connection_limit, options.channel_timeout)
    log.info("management API: %s", management_status(state, options))
    log.info("plugins: %s", plugins or "none")
    log.info("storage: %s", state.storage.name)


def _check_resolves(host: str, port: int) -> None:
    """A host name that does not resolve is named as such (waitress only says "invalid")."""
    if host.strip("[]") in ("", "*"):
        return
    try:
        socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {host}:{port}: the host does not resolve "
                           f"({exc.strerror or exc})") from None


def build_server(app, options: ServeOptions):
    """A waitress server for `app`, bound and ready to run; StartupError when it cannot listen."""
    from waitress.server import create_server

    from .config_api import upload_limit

    state = app.extensions["cliproxy_mgmt"]
    host, port = listen_address(state.store.data, options)
    spec = _listen_spec(host, port)
    _check_resolves(host, port)
    _raise_fd_limit(options.connection_limit)
    try:
        server = create_server(
            app, listen=spec, threads=options.threads, ident="cliproxy-mgmt",
            # The app decides which forwarding headers to trust (security/address.py).
            clear_untrusted_proxy_headers=False,
            max_request_body_size=upload_limit(state.store) + (1 << 20),
            connection_limit=options.connection_limit, channel_timeout=options.channel_timeout,
            cleanup_interval=min(CLEANUP_INTERVAL, options.channel_timeout),
            asyncore_use_poll=True)  # select() stops at 1024 descriptors
    except OSError as exc:
        raise StartupError(f"cannot listen on {spec}: {exc.strerror or exc}") from None
    except ValueError as exc:  # waitress refuses a listen spec it cannot parse or resolve
        raise StartupError(f"cannot listen on {spec}: {exc}") from None
    return server


def serve(options: ServeOptions) -> None:
    """Build the app, print the start-up summary and serve until interrupted."""
    from .app import create_app
    from .config.store import ConfigError
    from .registry import PluginError
    from .storage.base import StorageError

    if not os.path.exists(options.config):
        raise StartupError(f"config file {options.config} not found")
    _one_malloc_arena()  # before waitress starts its threads
    try:
        app = create_app(options.config, local_password=options.local_password)
    except (ConfigError, PluginError, OSError, UnicodeDecodeError, StorageError) as exc:
        raise StartupError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - e.g. a plugin's hook that raises: still one line
        log.debug("building the app failed", exc_info=True)
        raise StartupError(f"{type(exc).__name__}: {exc} (--log-level debug shows where)") from None
    server = build_server(app, options)
    _summary(app, options, ", ".join(_urls(server)))
    server.run()


def _urls(server) -> list[str]:
    """Where a waitress server (one socket or several) listens, as URLs."""
    pairs = getattr(server, "effective_listen", None) or [(server.effective_host, server.effective_port)]
    return [f"http://[{h}]:{p}" if ":" in str(h) else f"http://{h}:{p}" for h, p in pairs]
