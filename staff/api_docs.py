"""The API's description: /api/v1/openapi.json (OpenAPI 3.1, made by core/openapi.py from the
declarations the endpoints read their requests with) and a page that shows it to a person."""
from flask import current_app, jsonify, render_template, request
from flask_login import login_required

from core import openapi
from core.openapi import OBJECT, endpoint

from . import api, bp
from .api_routes import VERSION


def description() -> dict:
    server = (current_app.config.get("PUBLIC_URL") or request.host_url).rstrip("/")
    return openapi.document(current_app, VERSION, server=server)


@api.get("/openapi.json")
@endpoint("This description (OpenAPI 3.1)", public=True, responses={200: ("The OpenAPI document", OBJECT)})
def openapi_json():
    response = jsonify(description())
    response.headers["Access-Control-Allow-Origin"] = "*"  # a viewer on another site may read it: it holds no secret
    return response


def _schema_words(schema: dict) -> str:
    """A field's kind and limits in a few words (the page's table)."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_schema_words(s) for s in schema["anyOf"])
    kinds = schema.get("type", "any")
    kinds = " | ".join(kinds) if isinstance(kinds, list) else kinds
    if kinds == "array":
        kinds = f"array of {_schema_words(schema.get('items', {}))}"
    limits = []
    if "enum" in schema:
        limits.append(" | ".join(str(v) for v in schema["enum"] if v is not None))
    if "minimum" in schema or "maximum" in schema:
        limits.append(f"{schema.get('minimum', '')}..{schema.get('maximum', '')}")
    if "maxLength" in schema:
        limits.append(f"≤ {schema['maxLength']}")
    if "format" in schema:
        limits.append(schema["format"])
    return kinds + (f" ({', '.join(limits)})" if limits else "")


@bp.get("/api")
@login_required
def api_page():
    document = description()
    groups: dict = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            groups.setdefault(operation["tags"][0], []).append((method.upper(), path, operation))
    return render_template("staff/api.html", document=document, groups=groups, schema_words=_schema_words)
