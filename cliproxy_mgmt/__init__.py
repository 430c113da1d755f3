"""cliproxy-mgmt: the Management API of a CLIProxyAPI deployment, as a Flask app.

Plugin authors need only this module: `hookimpl` marks a hook implementation, the
records describe what hooks return, `create_app` builds an app.
"""

import pluggy

from .plugin_manager import NAME
from .records import ConfigSection, Provider

hookimpl = pluggy.HookimplMarker(NAME)

__version__ = "0.1.0"


def create_app(*args, **kwargs):
    """Build the Flask app; see `cliproxy_mgmt.app.create_app`."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["NAME", "hookimpl", "create_app", "ConfigSection", "Provider", "__version__"]
