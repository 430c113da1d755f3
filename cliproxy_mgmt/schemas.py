"""marshmallow schemas of the common request and response bodies (used for the OpenAPI description)."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class Error(Schema):
    """Every error: upstream's `{"error": "<text>"}`, sometimes with `message`, `status` or more keys."""

    class Meta:
        unknown = INCLUDE  # documented as open: some routes add keys (e.g. `existing_file`)

    error = fields.String(required=True)
    message = fields.String()
    status = fields.String()


class StatusOK(Schema):
    """What every mutating route answers on success."""

    status = fields.String(required=True, metadata={"enum": ["ok"]})


class BoolValue(Schema):
    value = fields.Boolean(required=True)


class IntValue(Schema):
    value = fields.Integer(required=True)


class StrValue(Schema):
    value = fields.String(required=True)


class StringListPatch(Schema):
    """PATCH of a string list: `{"index", "value"}` or `{"old", "new"}`."""

    index = fields.Integer()
    value = fields.String()
    old = fields.String()
    new = fields.String()


class ObjectListPatch(Schema):
    """PATCH of an object list: the item by `index` or by its key field, and the fields to set."""

    index = fields.Integer()
    match = fields.String()
    name = fields.String()
    value = fields.Dict(required=True)


class ConfigReplaced(Schema):
    ok = fields.Boolean(required=True)
    changed = fields.List(fields.String(), required=True)


VALUE_SCHEMAS = {bool: BoolValue, int: IntValue, str: StrValue}


def array_or_items(item: dict) -> dict:
    """JSON schema of a list body: a raw array, or `{"items": [...]}`."""
    array = {"type": "array", "items": item}
    return {"oneOf": [array, {"type": "object", "properties": {"items": array}, "required": ["items"]}]}
