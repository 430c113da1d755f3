"""GET /auth-files/models: the models an auth file's provider serves.

Upstream lists what its runtime model registry holds for the credential. This server runs
no proxy, so it answers with the static model definitions of the file's channel (the
auth-file type's `models_channel`), in upstream's entry shape: `id`, and `display_name`,
`type`, `owned_by` when non-empty. An unknown file or channel has no models (`[]`).
"""

from __future__ import annotations

from ..errors import ApiError
from .listing import parse_auth_json

_FIELDS = ("id", "display_name", "type", "owned_by")


def channel_models(app_state, channel: str) -> list:
    """The static model definitions the plugins registered for `channel` ([] when none).

    `registry.model_definitions` ({lower-cased channel: [ModelInfo]}) is collected from the
    `register_model_definitions` hook when the app is built.
    """
    definitions = app_state.registry.model_definitions
    return list(definitions.get(channel.lower()) or [])


def models_for_file(app_state, files, name: str) -> list:
    folder = files.folder(required=False)
    if folder is None:
        return []
    try:
        data = parse_auth_json(folder.read(name))
    except ApiError:  # not a valid name or not there: upstream answers an empty list
        return []
    if not isinstance(data, dict):
        return []
    raw_type = data.get("type")
    kind = files.types.get(raw_type.strip().lower()) if isinstance(raw_type, str) else None
    if kind is None:
        return []
    models = []
    for model in channel_models(app_state, kind.models_channel or kind.shown):
        if isinstance(model, dict) and model.get("id"):
            models.append({k: model[k] for k in _FIELDS if model.get(k)})
    return models
