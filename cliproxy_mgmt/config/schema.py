"""Validation of a loaded config (marshmallow, at the edge): the types Go's strict loader insists on.

Unknown keys are allowed everywhere (config edits keep them); a known key with a value of
the wrong type makes the whole config invalid, as `port: abc` does upstream.
"""

from __future__ import annotations

import ipaddress

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from ..fastlists import STR, all_exactly
from ..safeload import INT64_MAX, INT64_MIN
from ..security.keys import BCRYPT_MAX_BYTES, is_hashed
from .store import ConfigError, InvalidConfig


class Bool(fields.Boolean):
    """A YAML boolean and nothing else (no 1/0, no "true")."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Int(fields.Integer):
    """A YAML integer (a bool is not an int) that fits Go's int64, as every int field must."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        if not INT64_MIN <= value <= INT64_MAX:
            # A number of hundreds of digits is named by its size, not spelled out.
            shown = value if value.bit_length() <= 128 else f"a {value.bit_length()}-bit number"
            raise ValidationError(f"{shown} is outside the 64-bit integer range")
        return value


class Str(fields.String):
    """A YAML scalar read into a string field (yaml.v3 accepts numbers and booleans there)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, (dict, list)):
            raise self.make_error("invalid")
        return value


class Path(Str):
    """A file or folder name: no NUL byte, which no file system call accepts."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if isinstance(value, str) and "\0" in value:
            raise ValidationError("a path cannot hold a NUL character")
        return value


def _ip_or_cidr(value) -> None:
    try:
        ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        raise ValidationError(f"{value!r} is not an IP address or CIDR") from None


def optional(field_cls, *args, **kwargs):
    """A field that may also be null (Go's zero value)."""
    return field_cls(*args, allow_none=True, **kwargs)



class Open(Schema):
    class Meta:
        unknown = INCLUDE


class TLS(Open):
    enable = optional(Bool)
    cert = optional(Path)
    key = optional(Path)


class RemoteManagement(Open):
    allow_remote = optional(Bool, data_key="allow-remote")
    secret_key = optional(Str, data_key="secret-key")
    disable_control_panel = optional(Bool, data_key="disable-control-panel")
    panel_github_repository = optional(Str, data_key="panel-github-repository")
    trusted_proxies = optional(fields.List, Str(validate=_ip_or_cidr), data_key="trusted-proxies")
    cors_allowed_origins = optional(fields.List, optional(Str), data_key="cors-allowed-origins")
    max_json_body_bytes = optional(Int, data_key="max-json-body-bytes", validate=validate.Range(min=1))
    max_upload_bytes = optional(Int, data_key="max-upload-bytes", validate=validate.Range(min=1))
    panel_file = optional(Path, data_key="panel-file")
    latest_release_url = optional(Str, data_key="latest-release-url")


class QuotaExceeded(Open):
    switch_project = optional(Bool, data_key="switch-project")
    switch_preview_model = optional(Bool, data_key="switch-preview-model")


class Routing(Open):
    strategy = optional(Str)


class Streaming(Open):
    keepalive_seconds = optional(Int, data_key="keepalive-seconds")
    bootstrap_retries = optional(Int, data_key="bootstrap-retries")


class Pprof(Open):
    enable = optional(Bool)
    addr = optional(Str)


class PluginInstance(Open):
    enabled = optional(Bool)
    priority = optional(Int)


class Plugins(Open):
    """`plugins`: upstream's plugin settings; `configs.<id>.enabled: false` switches one of ours off."""

    enabled = optional(Bool)
    dir = optional(Str)
    configs = optional(fields.Dict, keys=Str(), values=optional(fields.Nested, PluginInstance))


class CoreConfig(Open):
    """The keys the core itself reads; provider sections are validated by their plugins."""

    host = optional(Str)
    port = optional(Int, validate=validate.Range(min=1, max=65535, error="{input} is not a port (1-65535)"))
    tls = optional(fields.Nested, TLS)
    remote_management = optional(fields.Nested, RemoteManagement, data_key="remote-management")
    auth_dir = optional(Path, data_key="auth-dir")
    debug = optional(Bool)
    commercial_mode = optional(Bool, data_key="commercial-mode")
    logging_to_file = optional(Bool, data_key="logging-to-file")
    logs_max_total_size_mb = optional(Int, data_key="logs-max-total-size-mb")
    error_logs_max_files = optional(Int, data_key="error-logs-max-files")
    usage_statistics_enabled = optional(Bool, data_key="usage-statistics-enabled")
    usage_statistics_file = optional(Path, data_key="usage-statistics-file")
    usage_statistics_max_details = optional(Int, data_key="usage-statistics-max-details")
    disable_cooling = optional(Bool, data_key="disable-cooling")
    request_retry = optional(Int, data_key="request-retry")
    max_retry_interval = optional(Int, data_key="max-retry-interval")
    quota_exceeded = optional(fields.Nested, QuotaExceeded, data_key="quota-exceeded")
    routing = optional(fields.Nested, Routing)
    ws_auth = optional(Bool, data_key="ws-auth")
    proxy_url = optional(Str, data_key="proxy-url")
    force_model_prefix = optional(Bool, data_key="force-model-prefix")
    request_log = optional(Bool, data_key="request-log")
    api_keys = optional(fields.List, optional(Str), data_key="api-keys")
    passthrough_headers = optional(Bool, data_key="passthrough-headers")
    streaming = optional(fields.Nested, Streaming)
    nonstream_keepalive_interval = optional(Int, data_key="nonstream-keepalive-interval")
    pprof = optional(fields.Nested, Pprof)
    oauth_endpoints = optional(fields.Dict, keys=Str(), values=optional(fields.Dict), data_key="oauth-endpoints")
    plugins = optional(fields.Nested, Plugins)
    max_retry_credentials = optional(Int, data_key="max-retry-credentials")
    redis_usage_queue_retention_seconds = optional(Int, data_key="redis-usage-queue-retention-seconds")
    oauth_request_scoped_errors = optional(fields.Dict, keys=Str(), values=optional(fields.List, optional(
        fields.Dict)), data_key="oauth-request-scoped-errors")


CORE_KEYS = frozenset(f.data_key or name for name, f in CoreConfig().fields.items())
_core_schema = CoreConfig()
# Keys holding a list of strings: a list of plain strings is valid there without asking
# marshmallow (item by item it costs about 10 us, a second for 100,000 client keys).
_STRING_LISTS = frozenset(f.data_key or name for name, f in _core_schema.fields.items()
                          if isinstance(f, fields.List) and isinstance(f.inner, Str))


def _plainly_valid(key: str, value) -> bool:
    return key in _STRING_LISTS and type(value) is list and all_exactly(value, STR)


def _first_message(messages, prefix="") -> str:
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        return _first_message(value, f"{prefix}{'.' if prefix else ''}{key}")
    if isinstance(messages, list) and messages:
        return _first_message(messages[0], prefix)
    return f"{prefix}: {messages}"


def make_validator(sections: dict):
    """Return validate(data, changed=None, before=None): the core schema, then each plugin
    section's own check; with `changed`, only those top-level keys are checked (a write's
    changes), each against its value in `before`, the data in force, when the section can
    use it (`ConfigSection.validate_change`)."""

    def validate(data: dict, changed=None, before=None) -> None:
        keys = set(data) if changed is None else set(changed) & set(data)
        try:
            _core_schema.load({k: data[k] for k in keys if not _plainly_valid(k, data[k])})
        except ValidationError as exc:
            raise ConfigError(f"invalid value for {_first_message(exc.messages)}") from None
        secret = str((data.get("remote-management") or {}).get("secret-key") or "")
        if secret and not is_hashed(secret) and len(secret.encode()) > BCRYPT_MAX_BYTES:
            raise InvalidConfig(f"remote-management.secret-key is longer than {BCRYPT_MAX_BYTES} "
                              "bytes, which bcrypt cannot use: choose a shorter key")
        for key, section in sections.items():
            if key in keys and data.get(key) is not None:
                try:
                    if before is not None and section.validate_change is not None:
                        section.validate_change(data[key], before.get(key))
                    else:
                        section.validate(data[key])
                except ValueError as exc:
                    raise ConfigError(f"invalid value for {key}: {exc}") from None

    return validate
