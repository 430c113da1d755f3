"""OAuth logins started from the management API.

The core owns the mechanics: sessions (`sessions.py`), states and callback files
(`callbacks.py`), the `is_webui` callback listener (`forwarder.py`), the routes
(`api.py`). Provider plugins return `OAuthStarter` / `Login` objects from the
`register_oauth_starters` hook (`starter.py` documents the contract) and use the helpers
re-exported here.
"""

from ..authfiles.timefmt import now_rfc3339, rfc3339_in, unix_ms
from .api import OAuthError, init_app
from .callbacks import Callback
from .device import DevicePace, positive
from .pkce import b64url, clock_state, hex_state, jwt_claims, pkce_pair
from .starter import Abandoned, Credential, Flow, Login, LoginError, OAuthStarter, http_session

__all__ = [
    "Abandoned", "Callback", "Credential", "DevicePace", "Flow", "Login", "LoginError", "OAuthError", "OAuthStarter",
    "b64url", "clock_state", "hex_state", "http_session", "init_app", "jwt_claims", "now_rfc3339",
    "pkce_pair", "positive", "rfc3339_in", "unix_ms",
]
