"""The `cliproxy-mgmt` command: serve | hash-key | check-config | plugins | panel fetch."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from .config import DEFAULT_PORT

DEFAULT_THREADS = 8


def _serve(args) -> int:
    import waitress

    from .app import create_app
    from .config.store import ConfigError
    from .registry import PluginError
    from .security.guard import env_password
    from .storage.base import StorageError

    try:
        app = create_app(args.config, local_password=args.local_password or "")
    except (ConfigError, PluginError, OSError, StorageError) as exc:
        print(f"cliproxy-mgmt: cannot start: {exc}", file=sys.stderr)
        return 1
    state = app.extensions["cliproxy_mgmt"]
    data = state.store.data
    host = args.host if args.host is not None else str(data.get("host") or "")
    port = data.get("port") if isinstance(data.get("port"), int) and data.get("port") > 0 else DEFAULT_PORT
    port = args.port or port
    listen = f"{'[' + host + ']' if ':' in host else host or '*'}:{port}"
    if not (state.store.get("remote-management", "secret-key") or env_password() or args.local_password):
        print("cliproxy-mgmt: the Management API is off (every /v0/management route is 404): set "
              "remote-management.secret-key in the config, MANAGEMENT_PASSWORD, or "
              "--local-password to enable it", file=sys.stderr, flush=True)
    from .config_api import upload_limit
    waitress.serve(app, listen=listen, threads=args.threads, ident="cliproxy-mgmt",
                   # The app decides which forwarding headers to trust (docs/decisions.md).
                   clear_untrusted_proxy_headers=False,
                   max_request_body_size=upload_limit(state.store) + (1 << 20))
    return 0


def _hash_key(args) -> int:
    from .security.keys import SecretTooLong, hash_secret

    key = args.key if args.key is not None else (
        getpass.getpass("management key: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n"))
    if not key:
        print("cliproxy-mgmt: empty key", file=sys.stderr)
        return 1
    try:
        print(hash_secret(key))
    except SecretTooLong as exc:
        print(f"cliproxy-mgmt: {exc}", file=sys.stderr)
        return 1
    return 0


def _check_config(args) -> int:
    from .config.schema import CORE_KEYS, make_validator
    from .config.store import ConfigError, parse
    from .plugin_manager import get_plugin_manager
    from .registry import PluginError, collect_sections

    try:
        sections = collect_sections(get_plugin_manager(), CORE_KEYS)
        with open(args.path, encoding="utf-8") as f:
            make_validator(sections)(parse(f.read()))
    except (ConfigError, PluginError, OSError, UnicodeDecodeError) as exc:
        print(f"{args.path}: invalid: {exc}", file=sys.stderr)
        return 1
    print(f"{args.path}: ok")
    return 0


# What `plugins` lists for each registration hook: a label and the attribute naming the item.
_LISTED = (("register_providers", "provider", "id"), ("register_config_sections", "config", "key"),
           ("register_blueprints", "blueprint", "name"), ("register_oauth_starters", "oauth", "route"),
           ("register_auth_file_types", "auth-file type", "type"),
           ("register_model_definitions", "models", "channel"))


def _plugins(args) -> int:
    from .plugin_manager import describe_plugins, get_plugin_manager
    from .registry import call_each

    pm = get_plugin_manager()
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cliproxy-mgmt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the management server with waitress")
    serve.add_argument("--config", default="config.yaml", help="path of config.yaml")
    serve.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="waitress worker threads")
    serve.add_argument("--host", default=None, help="listen address (overrides the config's host)")
    serve.add_argument("--port", type=int, default=None, help="listen port (overrides the config's port)")
    serve.add_argument("--local-password", default="",
                       help="a password for this run only, accepted from loopback clients, never stored")
    serve.set_defaults(run=_serve)
    hk = sub.add_parser("hash-key", help="print the bcrypt hash of a management key")
    hk.add_argument("key", nargs="?", help="the key (read from the terminal or stdin when omitted)")
    hk.set_defaults(run=_hash_key)
    cc = sub.add_parser("check-config", help="validate a config.yaml")
    cc.add_argument("path")
    cc.set_defaults(run=_check_config)
    pl = sub.add_parser("plugins", help="list loaded plugins and what each registers")
    pl.set_defaults(run=_plugins)
    panel = sub.add_parser("panel", help="the Management Center web UI file (management.html)")
    fetch = panel.add_subparsers(dest="action", required=True).add_parser(
        "fetch", help="download, verify and install management.html from the UI's GitHub releases")
    fetch.add_argument("--config", default="config.yaml", help="path of config.yaml")
    fetch.add_argument("--version", help="a release tag such as v1.22.2 (default: the latest)")
    fetch.set_defaults(run=_panel_fetch)
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
