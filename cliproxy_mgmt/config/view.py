"""GET /config: the effective config as upstream's JSON.

Defaults are filled in, server and secret settings (`host`, `port`, `auth-dir`,
`remote-management`) are hidden, lists are `[]` rather than null (docs/decisions.md), and each
plugin's section is shown by the plugin itself.
"""

from __future__ import annotations

from ..settings import read_strategy

PPROF_ADDR = "127.0.0.1:8316"


def _map(data: dict, key: str) -> dict:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _typed(value, kind, default):
    if kind is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else default
    return value if isinstance(value, kind) else default


def _core_head(data: dict) -> dict:
    streaming = _map(data, "streaming")
    view = {
        "proxy-url": _typed(data.get("proxy-url"), str, ""),
        "force-model-prefix": _typed(data.get("force-model-prefix"), bool, False),
        "request-log": _typed(data.get("request-log"), bool, False),
        "api-keys": [k for k in data.get("api-keys") or [] if isinstance(k, str)],
        "passthrough-headers": _typed(data.get("passthrough-headers"), bool, False),
        "streaming": {k: streaming[k] for k in ("keepalive-seconds", "bootstrap-retries")
                      if _typed(streaming.get(k), int, 0)},
    }
    interval = _typed(data.get("nonstream-keepalive-interval"), int, 0)
    if interval:
        view["nonstream-keepalive-interval"] = interval
    tls, pprof = _map(data, "tls"), _map(data, "pprof")
    quota, routing = _map(data, "quota-exceeded"), _map(data, "routing")
    view.update({
        "tls": {"enable": _typed(tls.get("enable"), bool, False),
                "cert": str(tls.get("cert") or ""), "key": str(tls.get("key") or "")},
        "debug": _typed(data.get("debug"), bool, False),
        "pprof": {"enable": _typed(pprof.get("enable"), bool, False),
                  "addr": str(pprof.get("addr") or PPROF_ADDR)},
        "commercial-mode": _typed(data.get("commercial-mode"), bool, False),
        "logging-to-file": _typed(data.get("logging-to-file"), bool, False),
        "logs-max-total-size-mb": max(_typed(data.get("logs-max-total-size-mb"), int, 0), 0),
        "error-logs-max-files": _error_logs_max_files(data),
        "usage-statistics-enabled": _typed(data.get("usage-statistics-enabled"), bool, False),
        "disable-cooling": _typed(data.get("disable-cooling"), bool, False),
        "request-retry": _typed(data.get("request-retry"), int, 0),
        "max-retry-interval": _typed(data.get("max-retry-interval"), int, 0),
        "max-retry-credentials": _typed(data.get("max-retry-credentials"), int, 0),
        "quota-exceeded": {
            "switch-project": _typed(quota.get("switch-project"), bool, False),
            "switch-preview-model": _typed(quota.get("switch-preview-model"), bool, False)},
        "routing": {"strategy": read_strategy(routing.get("strategy"))},
        "ws-auth": _typed(data.get("ws-auth"), bool, False),
    })
    return view


def _error_logs_max_files(data: dict) -> int:
    value = _typed(data.get("error-logs-max-files"), int, 10)
    return 10 if value < 0 else value


def _payload(data: dict) -> dict:
    """Upstream's five rule lists (none omitempty there): each `[]` when not set, not null."""
    payload = _map(data, "payload")
    return {k: _typed(payload.get(k), list, []) for k in
            ("default", "default-raw", "override", "override-raw", "filter")}


def build_config_view(data: dict, sections: dict) -> dict:
    """The GET /config object for plain config `data` and the plugins' `sections`."""
    view = _core_head(data)
    for key, section in sections.items():
        shown = section.view(data.get(key), data)
        if shown is not None:
            view[key] = shown
    view["payload"] = _payload(data)
    view.update(_upstream_newer(data))
    return view


def _upstream_newer(data: dict) -> dict:
    """Keys upstream's newer servers show: the usage queue's retention, error rules, plugins."""
    from ..scoped_errors import clean_map

    view = {"redis-usage-queue-retention-seconds": _typed(data.get("redis-usage-queue-retention-seconds"), int, 0)}
    rules = clean_map(data.get("oauth-request-scoped-errors"))
    if rules:
        view["oauth-request-scoped-errors"] = rules
    plugins = _map(data, "plugins")
    view["plugins"] = {"enabled": plugins.get("enabled") is not False, "dir": str(plugins.get("dir") or "plugins"),
                       "configs": {str(k): v for k, v in _map(plugins, "configs").items() if isinstance(v, dict)}}
    return view
