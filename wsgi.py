"""`waitress-serve wsgi:app`: the app on $CLIPROXY_MGMT_CONFIG (default ./config.yaml)."""

from cliproxy_mgmt import create_app

app = create_app()
