"""The OpenAPI 3 description of every management route, built with apispec from the views' docs.

A view is described with `@describe(...)` (or `describe(...)(view)`); the conventions
describe the routes they generate. `build_spec(app)` walks the app's URL map, so a route
nobody described shows up in `undescribed(app)` (and a test fails). Every operation also
gets a `default` response with the error shape, since any route can refuse with one.
"""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, jsonify

from . import __version__
from .schemas import Error

PREFIX = "/v0/management"
DOC_ATTR = "__openapi__"
_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def describe(summary: str, *, body=None, body_type: str = "application/json", query=(),
             ok=None, ok_type: str = "application/json", methods=None, also=None):
    """Attach an OpenAPI description to a view.

    body / ok: a marshmallow Schema class or a JSON-schema dict; query: (name, type,
    description) triples, type a JSON-schema type name; methods: the methods this
    description is for (default: all of the view's methods); also: other success answers,
    status code -> schema (e.g. a 207 multi-status).
    """

    def decorate(view):
        docs = view.__dict__.setdefault(DOC_ATTR, {})
        for method in methods or ("*",):
            docs[method] = {"summary": summary, "body": body, "body_type": body_type,
                            "query": tuple(query), "ok": ok, "ok_type": ok_type, "also": dict(also or {})}
        return view

    return decorate


def _content(schema, media_type: str) -> dict:
    return {media_type: {"schema": {} if schema is None else schema}}


def _operation(doc: dict, path_params) -> dict:
    op = {"summary": doc["summary"], "responses": {
        "200": {"description": "success", "content": _content(doc["ok"], doc["ok_type"])},
        "default": {"description": "error", "content": {"application/json": {"schema": Error}}},
    }}
    for status, schema in doc.get("also", {}).items():
        op["responses"][str(status)] = {"description": "success", "content": _content(schema, "application/json")}
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in path_params]
    params += [{"name": name, "in": "query", "required": False, "schema": {"type": kind},
                "description": text} for name, kind, text in doc["query"]]
    if params:
        op["parameters"] = params
    if doc["body"] is not None:
        op["requestBody"] = {"required": True, "content": _content(doc["body"], doc["body_type"])}
    return op


def _routes(app):
    """(openapi path, path params, method, view) for every management route."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX):
            continue
        path = _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule.rule[len(PREFIX):]) or "/"
        params = [m.group(2) for m in _CONVERTER.finditer(rule.rule)]
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield path, params, method, view


def _doc_for(view, method):
    docs = getattr(view, DOC_ATTR, {})
    return docs.get(method) or docs.get("*")


def undescribed(app) -> list[str]:
    """`METHOD /path` of every management route without a description."""
    return [f"{method} {path}" for path, _, method, view in _routes(app) if _doc_for(view, method) is None]


def build_spec(app) -> dict:
    """The OpenAPI 3 document of the app's management routes."""
    spec = APISpec(title="cliproxy-mgmt Management API", version=__version__, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()], servers=[{"url": PREFIX}],
                   security=[{"bearer": []}])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    operations: dict = {}
    for path, params, method, view in _routes(app):
        doc = _doc_for(view, method)
        if doc is not None:
            operations.setdefault(path, {})[method.lower()] = _operation(doc, params)
    for path in sorted(operations):
        spec.path(path=path, operations=operations[path])
    return spec.to_dict()


bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
@describe("This OpenAPI description")
def openapi_json():
    extras = current_app.extensions["cliproxy_mgmt"].extras
    if "openapi" not in extras:  # routes are fixed once the app is built
        extras["openapi"] = build_spec(current_app)
    return jsonify(extras["openapi"])
