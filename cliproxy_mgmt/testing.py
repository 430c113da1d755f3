"""Fixtures for testing cliproxy-mgmt and its plugins with pytest-flask.

A pytest plugin that a test suite opts into (it is not loaded into every pytest run of the
environment): install `cliproxy-mgmt[testing]` and put this line into the suite's top-level
conftest.py:

    pytest_plugins = ["cliproxy_mgmt.testing"]

Its tests can then use:

* `make_app(config_text=None, *, extra_yaml="", plugins=(), load_entrypoints=False, **kw)`:
  a factory writing a fresh config.yaml (and `auths/` folder) into the test's tmp_path and
  returning `create_app(...)` on it; `plugins` are extra plugin objects to register;
* `app`: `make_app()`, the fixture pytest-flask derives `client` from;
* `mgmt`: a `ManagementClient` on `client` that prefixes /v0/management and sends the key.
"""

from __future__ import annotations

import functools

import bcrypt
import pytest

from . import create_app

MGMT_PREFIX = "/v0/management"
KEY = "test-management-key"

CONFIG_TEMPLATE = """\
# Test config
host: "127.0.0.1"
port: 8317

# Management API settings
remote-management:
  allow-remote: false
  secret-key: "{secret}"
  trusted-proxies: []

# Where OAuth token files live
auth-dir: "{auth_dir}"

debug: false
request-retry: 3

# Client keys
api-keys:
  - "client-key-1" # first client
  - "client-key-2"
{extra}"""


@functools.lru_cache(maxsize=None)
def key_hash(key: str = KEY) -> str:
    """A cheap (cost 4) bcrypt hash of `key`, so each test app does not pay for cost 10."""
    return bcrypt.hashpw(key.encode(), bcrypt.gensalt(4)).decode()


def config_text(auth_dir, *, extra_yaml: str = "", key: str = KEY) -> str:
    """The default test config with `extra_yaml` appended."""
    return CONFIG_TEMPLATE.format(secret=key_hash(key) if key else "", auth_dir=auth_dir,
                                  extra=extra_yaml)


class ManagementClient:
    """A Flask test client speaking to /v0/management with the management key."""

    def __init__(self, client, key: str = KEY):
        self.client = client
        self.key = key

    def request(self, method: str, path: str, *, key: str | None = "__default__", headers=None, **kw):
        headers = dict(headers or {})
        key = self.key if key == "__default__" else key
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {key}")
        return self.client.open(MGMT_PREFIX + path, method=method, headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def make_app(tmp_path):
    """Factory: make_app(config_text=None, *, extra_yaml="", plugins=(), load_entrypoints=False, **kw)."""

    def make(text: str | None = None, *, extra_yaml: str = "", plugins=(), load_entrypoints=False, **kw):
        auth_dir = tmp_path / "auths"
        auth_dir.mkdir(exist_ok=True)
        path = tmp_path / "config.yaml"
        path.write_text(text if text is not None else config_text(auth_dir, extra_yaml=extra_yaml))
        app = create_app(str(path), plugins=plugins, load_entrypoints=load_entrypoints, **kw)
        app.config["TESTING"] = True
        return app

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def mgmt(client) -> ManagementClient:
    return ManagementClient(client)
