"""The import payload (upstream's export format), checked with the types Go decodes it into.

Only what the merge uses is read: `version` and `usage.apis[*].models[*].details[]`; the
aggregate numbers of a snapshot are recomputed, so they are ignored. A value of the wrong
type is an error (Go's json.Unmarshal fails the same way); `null` means the zero value.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from ..config.schema import Bool, Int
from . import timestamps
from .model import Detail, Tokens

INT64 = (-(1 << 63), (1 << 63) - 1)


class Int64(Int):
    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if not INT64[0] <= value <= INT64[1]:
            raise self.make_error("invalid")
        return value


class Timestamp(fields.Field):
    """An RFC 3339 string as a `timestamps.Stamp`."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("not a timestamp")
        try:
            return timestamps.parse(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def _opt(field_cls, *args, **kwargs):
    return field_cls(*args, allow_none=True, **kwargs)


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class TokensSchema(_Lenient):
    input_tokens = _opt(Int64)
    output_tokens = _opt(Int64)
    reasoning_tokens = _opt(Int64)
    cached_tokens = _opt(Int64)
    total_tokens = _opt(Int64)


class DetailSchema(_Lenient):
    timestamp = _opt(Timestamp)
    source = _opt(fields.String)
    auth_index = _opt(fields.String)
    tokens = _opt(fields.Nested, TokensSchema)
    failed = _opt(Bool)


class ModelSchema(_Lenient):
    details = _opt(fields.List, _opt(fields.Nested, DetailSchema))


class ApiSchema(_Lenient):
    models = _opt(fields.Dict, keys=fields.String(), values=_opt(fields.Nested, ModelSchema))


class SnapshotSchema(_Lenient):
    apis = _opt(fields.Dict, keys=fields.String(), values=_opt(fields.Nested, ApiSchema))


class ImportSchema(_Lenient):
    version = _opt(Int64)
    usage = _opt(fields.Nested, SnapshotSchema)


_import_schema = ImportSchema()


def load_import(payload) -> tuple[int, list[Detail]]:
    """(version, details) of an import body; ValidationError for a type mismatch.

    Api names are trimmed and empty ones skipped; model names are trimmed, empty ones become
    `unknown`; tokens are normalised and a zero or missing timestamp becomes now.
    """
    if payload is None:
        return 0, []
    if not isinstance(payload, dict):
        raise ValidationError("not an object")
    loaded = _import_schema.load(payload)
    details = []
    for api, api_stats in ((loaded.get("usage") or {}).get("apis") or {}).items():
        api = api.strip()
        if not api:
            continue
        for model, model_stats in ((api_stats or {}).get("models") or {}).items():
            model = model.strip() or "unknown"
            for d in (model_stats or {}).get("details") or ():
                d = d or {}
                t = d.get("tokens") or {}
                tokens = Tokens(*(t.get(f"{k}_tokens") or 0 for k in
                                  ("input", "output", "reasoning", "cached", "total")))
                stamp = d.get("timestamp")
                if stamp is None or stamp.ns == timestamps.ZERO.ns:
                    stamp = timestamps.now()
                details.append(Detail(api=api, model=model, stamp=stamp,
                                      source=d.get("source") or "",
                                      auth_index=d.get("auth_index") or "",
                                      failed=bool(d.get("failed")), tokens=tokens.normalized()))
    return loaded.get("version") or 0, details
