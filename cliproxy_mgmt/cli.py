"""The `cliproxy-mgmt` command: serve | hash-key | check-config | plugins | panel fetch.

Every operator mistake ends in one line on stderr (`cliproxy-mgmt: cannot start: ...` or
`cliproxy-mgmt: error: ...`) and a non-zero exit, never a traceback; `serve --log-level
debug` (or CLIPROXY_MGMT_LOG_LEVEL=debug) adds the traceback of an unexpected failure.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

from . import __version__
from .logs.setup import LEVELS as LOG_LEVELS
from .logs.setup import LOG_LEVEL_ENV, configure_console, env_level
from .serving import (DEFAULT_CHANNEL_TIMEOUT, DEFAULT_CONNECTION_LIMIT, DEFAULT_THREADS,
                      ServeOptions, StartupError, serve)

PROG = "cliproxy-mgmt"

log = logging.getLogger(__name__)


class CliError(Exception):
    """A mistake in how the command was used: printed as `cliproxy-mgmt: error: ...`."""


def _serve(args) -> int:
    from .logs.access import ACCESS_LOGGER

    if not args.access_log:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
    options = ServeOptions(config=args.config, host=args.host, port=args.port, threads=args.threads,
                           connection_limit=args.connection_limit,
                           channel_timeout=args.channel_timeout,
                           local_password=args.local_password or "")
    serve(options)
    return 0


def _read_key() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    try:
        return getpass.getpass("management key: ")
    except EOFError:  # Ctrl-D at the prompt
        raise CliError("no key entered") from None


def _hash_key(args) -> int:
    from .security.keys import SecretTooLong, hash_secret

    key = args.key if args.key is not None else _read_key()
    if not key:
        raise CliError("empty key")
    try:
        print(hash_secret(key))
    except SecretTooLong as exc:
        raise CliError(str(exc)) from None
    return 0


def _check_config(args) -> int:
    from .config.known_keys import unknown_key_warnings
    from .config.schema import CORE_KEYS, make_validator
    from .config.store import ConfigError, parse
    from .fileio import open_regular
    from .plugin_manager import get_plugin_manager
    from .registry import PluginError, collect_sections
    from .storage.base import NotText, utf8_text

    try:
        sections = collect_sections(get_plugin_manager(), CORE_KEYS)
        with open_regular(args.path, follow_symlinks=True)[0] as f:
            data = parse(utf8_text(f.read()))
        make_validator(sections)(data)
    except (ConfigError, PluginError, OSError, NotText) as exc:
        print(f"{args.path}: invalid: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    for warning in unknown_key_warnings(data, sections):
        print(f"{args.path}: warning: {warning}", file=sys.stderr)
    print(f"{args.path}: ok")
    return 0


# What `plugins` lists for each registration hook: a label and the attribute naming the item.
_LISTED = (("register_providers", "provider", "id"), ("register_config_sections", "config", "key"),
           ("register_blueprints", "blueprint", "name"), ("register_oauth_starters", "oauth", "route"),
           ("register_auth_file_types", "auth-file type", "type"),
           ("register_model_definitions", "models", "channel"))


def _plugins(args) -> int:
    from .plugin_manager import describe_plugins, get_plugin_manager
    from .registry import PluginError, call_each

    try:
        pm = get_plugin_manager()
    except PluginError as exc:
        raise CliError(str(exc)) from None
    registered: dict = {}
    for hook, label, attribute in _LISTED:
        try:
            pairs = call_each(pm, hook, config=None)
        except Exception:  # noqa: BLE001 - a hook that needs a live config: listed by its hooks only
            pairs = []
        for plugin, item in pairs:
            registered.setdefault(plugin, []).append(f"{label} {getattr(item, attribute, item)}")
    for info in describe_plugins(pm):
        version = f" {info['version']}" if info["version"] else ""
        print(f"{info['name']}{version}: {', '.join(info['hooks'])}")
        for line in registered.get(info["name"], []):
            print(f"    {line}")
    return 0


def _panel_fetch(args) -> int:
    from .panel import run_fetch

    return run_fetch(args.config, args.version)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help (when there is one), descriptions printed as written."""

    def _get_help_string(self, action):
        if action.default in (None, ""):
            return action.help
        return super()._get_help_string(action)


def _add_serve(sub) -> None:
    serve = sub.add_parser("serve", help="run the management server with waitress", formatter_class=_Help,
                           description="Run the Management API (and the panel) with waitress.")
    serve.add_argument("--config", default=os.environ.get("CLIPROXY_MGMT_CONFIG") or "config.yaml",
                       help="path of config.yaml ($CLIPROXY_MGMT_CONFIG)")
    serve.add_argument("--host", help="listen on this address (default: the config's `host`, else all)")
    serve.add_argument("--port", type=_port, help="listen on this port (default: the config's `port`, else 8317)")
    serve.add_argument("--threads", type=_positive, default=DEFAULT_THREADS, help="waitress worker threads")
    serve.add_argument("--connection-limit", type=_positive, default=DEFAULT_CONNECTION_LIMIT,
                       help="open connections accepted at once (more wait in the listen backlog)")
    serve.add_argument("--channel-timeout", type=_positive, default=DEFAULT_CHANNEL_TIMEOUT,
                       help="seconds a connection may stay silent (half a request, idle keep-alive)")
    serve.add_argument("--local-password", default="",
                       help="a password for this run only, accepted from loopback clients, never stored")
    serve.add_argument("--log-level", type=str.lower, choices=LOG_LEVELS, default=env_level(),
                       help=f"least severe log level shown (${LOG_LEVEL_ENV})")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                       help="log one line per request")
    serve.set_defaults(run=_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(sub)
    hk = sub.add_parser("hash-key", help="print the bcrypt hash of a management key", formatter_class=_Help)
    hk.add_argument("key", nargs="?", help="the key (read from the terminal or stdin when omitted)")
    hk.set_defaults(run=_hash_key)
    cc = sub.add_parser("check-config", help="validate a config.yaml", formatter_class=_Help)
    cc.add_argument("path")
    cc.set_defaults(run=_check_config)
    pl = sub.add_parser("plugins", help="list loaded plugins and what each registers", formatter_class=_Help)
    pl.set_defaults(run=_plugins)
    panel = sub.add_parser("panel", help="the Management Center web UI file (management.html)")
    fetch = panel.add_subparsers(dest="action", required=True).add_parser(
        "fetch", help="download, verify and install management.html from the UI's GitHub releases",
        formatter_class=_Help)
    fetch.add_argument("--config", default=os.environ.get("CLIPROXY_MGMT_CONFIG") or "config.yaml",
                       help="path of config.yaml ($CLIPROXY_MGMT_CONFIG)")
    fetch.add_argument("--version", help="a release tag such as v1.22.2 (default: the latest)")
    fetch.set_defaults(run=_panel_fetch)
    return parser


def _fail(prefix: str, message: str) -> None:
    print(f"{PROG}: {prefix}{message}", file=sys.stderr, flush=True)


def _quiet_broken_pipe() -> None:
    """stdout's reader went away (`| head`): stop writing to it, without a second error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run(args) -> int:
    """Run the chosen subcommand; turn every failure into one line and an exit status."""
    try:
        status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except StartupError as exc:
        _fail("cannot start: ", str(exc))
    except CliError as exc:
        _fail("error: ", str(exc))
    except KeyboardInterrupt:
        _fail("", "interrupted")
        return 130
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 141  # what a shell reports for SIGPIPE
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        log.debug("unexpected failure", exc_info=True)
        _fail("error: ", f"{type(exc).__name__}: {exc} ({LOG_LEVEL_ENV}=debug shows where)")
    return 1


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    configure_console(getattr(args, "log_level", None))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
