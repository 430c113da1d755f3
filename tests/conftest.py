"""The fixtures make_app, app and mgmt come from cliproxy-mgmt's opt-in pytest plugin."""

pytest_plugins = ["cliproxy_mgmt.testing"]
