"""The config file: its store, schema, YAML handling and GET /config view."""

# Where the server listens when config.yaml names no `port` (upstream's default). Read by
# `cliproxy-mgmt serve` and by the OAuth callback forwarder, which sends callbacks there.
DEFAULT_PORT = 8317
