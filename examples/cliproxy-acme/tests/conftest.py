"""cliproxy-mgmt's pytest plugin (`cliproxy_mgmt.testing`, opted into below) supplies make_app,
client and mgmt; the app under test is the default one with this plugin registered."""

import pytest

import cliproxy_acme

pytest_plugins = ["cliproxy_mgmt.testing"]


@pytest.fixture
def app(make_app):
    return make_app(plugins=[cliproxy_acme])
