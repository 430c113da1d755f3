"""`waitress-serve wsgi:app`: the app on $CLIPROXY_MGMT_CONFIG (default ./config.yaml)."""

from cliproxy_mgmt import create_app
from cliproxy_mgmt.logs.setup import configure_console

configure_console()  # stderr, secrets masked, $CLIPROXY_MGMT_LOG_LEVEL
app = create_app()
