"""The import payload (upstream's export format), checked with the types Go decodes it into.

Only what the merge uses is read: `version` and `usage.apis[*].models[*].details[]`; the
aggregate numbers of a snapshot are recomputed, so they are ignored. A value of the wrong
type is an error (Go's json.Unmarshal fails the same way); `null` means the zero value.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from ..config.schema import Bool, Int, optional
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
    """An RFC 3339 string as a `timestamps.Stamp`.

    The store keeps nanoseconds since the epoch in 64 bits (years 1678 to 2262, as Go's
    UnixNano): a time outside that range is refused, except Go's zero time (it means "now").
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("not a timestamp")
        try:
            stamp = timestamps.parse(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if stamp.ns != timestamps.ZERO.ns and not INT64[0] <= stamp.ns <= INT64[1]:
            raise ValidationError(f"timestamp {value!r} is out of range")
        return stamp



class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class TokensSchema(_Lenient):
    input_tokens = optional(Int64)
    output_tokens = optional(Int64)
    reasoning_tokens = optional(Int64)
    cached_tokens = optional(Int64)
    total_tokens = optional(Int64)


class DetailSchema(_Lenient):
    timestamp = optional(Timestamp)
    source = optional(fields.String)
    auth_index = optional(fields.String)
    tokens = optional(fields.Nested, TokensSchema)
    failed = optional(Bool)


class ModelSchema(_Lenient):
    details = optional(fields.List, optional(fields.Nested, DetailSchema))


class ApiSchema(_Lenient):
    models = optional(fields.Dict, keys=fields.String(), values=optional(fields.Nested, ModelSchema))


class SnapshotSchema(_Lenient):
    apis = optional(fields.Dict, keys=fields.String(), values=optional(fields.Nested, ApiSchema))


class ImportSchema(_Lenient):
    version = optional(Int64)
    usage = optional(fields.Nested, SnapshotSchema)


_import_schema = ImportSchema()


def load_import(payload) -> tuple[int, list[Detail]]:
    """(version, details) of an import body; ValidationError for a type mismatch.

    Api names are trimmed and empty ones skipped; model names are trimmed, empty ones become
    `unknown`; tokens are normalised and a zero or missing timestamp becomes now. Sums over
    many details saturate in the store (see `store.py`); a single detail out of range is an error.
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
                                  ("input", "output", "reasoning", "cached", "total"))).normalized()
                if not INT64[0] <= tokens.total <= INT64[1]:  # a computed total
                    raise ValidationError("total_tokens is outside the 64-bit integer range")
                stamp = d.get("timestamp")
                if stamp is None or stamp.ns == timestamps.ZERO.ns:
                    stamp = timestamps.now()
                details.append(Detail(api=api, model=model, stamp=stamp,
                                      source=d.get("source") or "",
                                      auth_index=d.get("auth_index") or "",
                                      failed=bool(d.get("failed")), tokens=tokens))
    return loaded.get("version") or 0, details
