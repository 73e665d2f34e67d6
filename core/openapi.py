"""The JSON API's description (OpenAPI 3.1), made from the same objects that read its requests.

An endpoint declares what it takes with `@endpoint(query={...}, body={...}, responses={...})`.
Before the view runs, the declaration reads the request (core/web.py's readers: lengths, ranges,
control characters, dates) and hands the view only the declared, checked values, in `query_values()`
and `body_values()`; a field it does not declare is refused. The description at /api/v1/openapi.json is
built from those declarations and the URL map, so what it says a request may carry is what the
server takes: a field added to the code without its declaration does not reach the view.

What a value means (a service code that exists, a phone number that is real, a slot still free)
stays the domain's to check; the declaration checks its shape.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import wraps

from flask import request
from flask_babel import gettext

from .errors import ValidationError
from .web import (_MOMENT_FORMAT, MAX_ID, _check_characters, arg_number, clean_text, day, invalid, json_object,
                  whole_number)

OPENAPI_VERSION = "3.1.0"
YEAR = "(20[0-9]{2}|2100)"  # core/web.py's MIN_YEAR to MAX_YEAR
API_PREFIX = "/api/v1/"
SCHEMAS: dict[str, dict] = {}  # components/schemas, by name (see `model`)
# JSON Schema's view of core/web.py's rule: no control characters (Cc) in a one-line text.
ONE_LINE = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"
MANY_LINES = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"


def model(name: str, properties: dict, required=None, **extra) -> dict:
    """A named response object (components/schemas/<name>); returns its $ref. `required`: the
    keys always present (default: all)."""
    schema = {"type": "object", "properties": properties,
              "required": sorted(properties) if required is None else list(required), **extra}
    if SCHEMAS.get(name, schema) != schema:
        raise ValueError(f"Two different schemas are named {name}")
    SCHEMAS[name] = schema
    return ref(name)


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    result = {**schema, "type": [*kinds, "null"]}
    if "enum" in result:
        result["enum"] = [*result["enum"], None]
    return result


def array(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
DATE = {"type": "string", "format": "date"}
OBJECT = {"type": "object"}


# --- what a request may carry ------------------------------------------------------------------

@dataclass
class Field:
    """One value of a query or a body. `read` checks it and returns it (None when absent and not
    required); `schema` says the same in JSON Schema."""
    description: str = ""
    required: bool = False

    def read(self, source: dict, key: str):
        raise NotImplementedError

    def absent(self, key: str, default=None):
        """What a field not sent reads as: a refusal when it is required."""
        if self.required:
            raise invalid(key, "required", gettext("%(field)s is required.", field=key))
        return default

    def read_arg(self, args, key: str):
        """The same from a query string, where every value is text."""
        return self.read({key: args.get(key)} if args.get(key) not in (None, "") else {}, key)

    def schema(self) -> dict:
        raise NotImplementedError

    def documented(self) -> dict:
        schema = self.schema()
        return {**schema, "description": self.description} if self.description else schema


@dataclass
class Text(Field):
    max_length: int = 200
    multiline: bool = False
    choices: tuple | None = None
    upper: bool = False  # compared in capitals (service codes): "a" is "A"

    def read(self, source, key):
        value = clean_text(source, key, max_length=self.max_length, required=self.required, multiline=self.multiline)
        if value is not None and self.choices is not None:
            wanted = value.strip().upper() if self.upper else value
            if wanted not in self.choices:
                raise invalid(key, "unsupported", gettext("%(field)s must be one of %(choices)s.", field=key,
                                                         choices=", ".join(self.choices)))
            value = wanted
        return value

    def schema(self):
        if self.choices is not None:
            choices = list(self.choices)
            if self.upper:
                choices += [c.lower() for c in self.choices if c.lower() != c]
            return {"type": "string", "enum": choices}
        result = {"type": "string", "maxLength": self.max_length, "pattern": MANY_LINES if self.multiline else ONE_LINE}
        if self.required:
            result["minLength"] = 1
        return result


@dataclass
class Whole(Field):
    low: int = 1
    high: int = MAX_ID
    default: int | None = None

    def read(self, source, key):
        value = whole_number(source, key, self.default, low=self.low, high=self.high)
        return self.absent(key) if value is None else value

    def read_arg(self, args, key):
        value = arg_number(key, low=self.low, high=self.high, args=args)
        return self.absent(key, self.default) if value is None else value

    def schema(self):
        result = {"type": "integer", "minimum": self.low, "maximum": self.high}
        if self.default is not None:
            result["default"] = self.default
        return result


def Id(description="", required=False) -> Whole:  # noqa: N802  (reads like the other field kinds)
    return Whole(description, required)


@dataclass
class Flag(Field):
    default: bool | None = None
    TRUE = ("true", "1", "yes", "on")
    FALSE = ("false", "0", "no", "off")

    def read(self, source, key):
        value = source.get(key)
        if value is None:
            return self.absent(key, self.default)
        if not isinstance(value, bool):
            raise invalid(key, "not a boolean", gettext("%(field)s must be true or false.", field=key))
        return value

    def read_arg(self, args, key):
        raw = args.get(key)
        if raw in (None, ""):
            return self.read({}, key)
        if raw.lower() not in self.TRUE + self.FALSE:
            raise invalid(key, "not a boolean", gettext("%(field)s must be true or false.", field=key))
        return raw.lower() in self.TRUE

    def schema(self):
        return {"type": "boolean", **({"default": self.default} if self.default is not None else {})}


@dataclass
class Day(Field):
    def read(self, source, key):
        value = source.get(key)
        if value is None:
            return self.absent(key)
        return day(value, key)

    def schema(self):
        return {"type": "string", "format": "date", "pattern": "^" + YEAR + r"-[0-9]{2}-[0-9]{2}$"}


MOMENT_PATTERN = ("^" + YEAR + r"-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                  r"(Z|[+-][0-9]{2}:[0-9]{2})?$")


@dataclass
class Moment(Field):
    """An ISO 8601 time, its zone optional: the view reads it with core.web.moment once it knows
    whose wall clock a time without a zone is on (the branch's). Here: text of that shape."""

    def read(self, source, key):
        value = source.get(key)
        if value is None:
            return self.absent(key)
        if not isinstance(value, str) or len(value) > 40 or not _MOMENT_FORMAT.fullmatch(value):
            raise invalid(key, "not an ISO time", gettext("%(field)s must be an ISO time, %(example)s.", field=key,
                                                            example="e.g. 2026-03-03T10:00:00+04:00"))
        return value

    def schema(self):
        return {"type": "string", "maxLength": 40, "pattern": MOMENT_PATTERN}


@dataclass
class Items(Field):
    """A list of values of one kind (`of`), at most `max_items`."""
    of: Field = None
    max_items: int = 100

    def read(self, source, key):
        value = source.get(key)
        if value is None:
            return self.absent(key)
        if not isinstance(value, list):
            raise invalid(key, "not a list", gettext("%(field)s must be a list.", field=key))
        if len(value) > self.max_items:
            raise invalid(key, "too many", gettext("%(field)s has at most %(most)s items.", field=key,
                                                  most=self.max_items))
        result = []
        for item in value:
            if item is None:
                raise invalid(key, "empty item", gettext("%(field)s has an empty item.", field=key))
            result.append(self.of.read({key: item}, key))
        return result

    def schema(self):
        return {"type": "array", "items": self.of.schema(), "maxItems": self.max_items}


@dataclass
class Mapping(Field):
    """An object of names to one kind of value (`of`): a template's texts per language, say."""
    of: Field = None
    keys: tuple | None = None
    max_keys: int = 50

    def read(self, source, key):
        value = source.get(key)
        if value is None:
            return self.absent(key)
        if not isinstance(value, dict):
            raise invalid(key, "not an object", gettext("%(field)s must be an object.", field=key))
        if len(value) > self.max_keys or (self.keys is not None and not set(value) <= set(self.keys)):
            raise invalid(key, "unknown keys", gettext("%(field)s has unknown keys.", field=key))
        return {name: self.of.read({key: item}, key) for name, item in value.items()}

    def schema(self):
        result = {"type": "object", "additionalProperties": self.of.schema(), "maxProperties": self.max_keys}
        if self.keys is not None:
            result.update(propertyNames={"enum": list(self.keys)})
        return result


@dataclass
class Any(Field):
    """Passed through as sent (the body's own checks of size, depth and characters apply): only
    for a value the domain reads in its own way and refuses clearly. Says what it takes in
    `schema_of`."""
    schema_of: dict = field(default_factory=dict)

    def read(self, source, key):
        value = source.get(key)
        if value is None:
            return self.absent(key)
        if isinstance(value, str):
            _check_characters(key, value, "")
        return value

    def schema(self):
        return dict(self.schema_of)


# --- one endpoint --------------------------------------------------------------------------------

@dataclass
class Spec:
    summary: str
    description: str = ""
    query: dict = field(default_factory=dict)
    body: dict | None = None
    responses: dict = field(default_factory=dict)
    public: bool = False
    role: str = "staff"  # who may call it: staff, manager or admin (core/scope.py), when not public
    empty_body: bool = False  # an action that takes nothing may be sent without a body
    tags: tuple = ()

    def read_query(self) -> dict:
        unknown = sorted(set(request.args) - set(self.query))
        if unknown:
            raise _unknown(unknown)
        return {key: declared.read_arg(request.args, key) for key, declared in self.query.items()}

    def read_body(self) -> dict:
        data = json_object(empty_ok=self.empty_body or not any(f.required for f in self.body.values()))
        unknown = sorted(set(data) - set(self.body))
        if unknown:
            raise _unknown(unknown)
        request.environ[SENT_KEY] = frozenset(data)
        return {key: declared.read(data, key) for key, declared in self.body.items()}


def _unknown(names):
    shown = ", ".join(name[:40] for name in names[:5])
    return ValidationError(gettext("Unknown field(s): %(names)s.", names=shown),
                           {name[:40]: "unknown" for name in names[:20]})


QUERY_KEY, BODY_KEY, SENT_KEY = "seed.query", "seed.body", "seed.body.sent"


def query_values() -> dict:
    """The declared query arguments of this request, read and checked (None: absent)."""
    return request.environ.get(QUERY_KEY, {})


def body_values() -> dict:
    """The declared fields of this request's body, read and checked (None: absent)."""
    return request.environ.get(BODY_KEY, {})


def sent_values() -> dict:
    """The declared fields this request's body really carries: an update changes only those, and
    a field sent as null (back to the default, remove) stays apart from one left out (unchanged)."""
    given = request.environ.get(SENT_KEY, frozenset())
    return {key: value for key, value in body_values().items() if key in given}


def endpoint(summary: str, *, description="", query=None, body=None, responses=None, public=False, role="staff",
             empty_body=False, tags=()):
    """Declare what the view takes and answers (the module's docstring). Put it below the route
    and the login decorators: the caller is known before the request is read."""
    spec = Spec(summary, description, dict(query or {}), None if body is None else dict(body),
                dict(responses or {200: OBJECT}), public, role, empty_body, tuple(tags))

    def wrap(view):
        @wraps(view)
        def run(*args, **kwargs):
            # On the request, not on g: g belongs to the app context, which outlives a request
            # when one is pushed around several (tests, the CLI).
            request.environ[QUERY_KEY] = spec.read_query()
            request.environ[BODY_KEY] = spec.read_body() if spec.body is not None else {}
            return view(*args, **kwargs)

        run.openapi = spec
        return run

    return wrap


# --- the description -----------------------------------------------------------------------------

ERROR = model("Error", {
    "error": {"type": "string", "description": "What kind of refusal: invalid, not_found, conflict, ..."},
    "message": {"type": "string", "description": "What went wrong, for a person"},
    "detail": {"description": "Per field: the reason (invalid input), or more about the refusal"},
}, required=["error", "message"])

REFUSALS = {
    400: "The request is malformed: `detail` names each field and its reason",
    401: "Not signed in: send a session cookie or `Authorization: Bearer <API token>`",
    403: "Signed in, but this role may not do this",
    404: "No such thing within the caller's branches",
    409: "The change conflicts with the current state",
    413: "The body is too large",
    415: "The body is not JSON",
    429: "Too many requests: try again later",
}
_CONVERTERS = {"int": {"type": "integer", "minimum": 0, "maximum": MAX_ID}, "default": {"type": "string"},
               "string": {"type": "string"}, "path": {"type": "string"}}
_PART = re.compile(r"<(?:(?P<converter>[a-zA-Z_]+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


def _path(rule):
    params = []

    def part(found):
        converter = found.group("converter") or "default"
        schema = dict(_CONVERTERS.get(converter, {"type": "string"}))
        if converter == "any":
            schema = {"type": "string", "enum": [a.strip().strip("'\"") for a in found.group("args").split(",")]}
        params.append({"name": found.group("name"), "in": "path", "required": True, "schema": schema})
        return "{" + found.group("name") + "}"

    return _PART.sub(part, rule.rule), params


def _operation(spec: Spec, method: str, params: list, endpoint_name: str, tag: str) -> dict:
    operation = {"operationId": f"{endpoint_name.replace('.', '_')}_{method.lower()}", "summary": spec.summary,
                 "tags": list(spec.tags or (tag,))}
    if spec.description:
        operation["description"] = spec.description
    parameters = list(params) + [
        {"name": key, "in": "query", "required": declared.required, "schema": declared.schema(),
         **({"description": declared.description} if declared.description else {})}
        for key, declared in spec.query.items()]
    if parameters:
        operation["parameters"] = parameters
    if spec.body is not None:
        properties = {key: declared.documented() for key, declared in spec.body.items()}
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        required = [key for key, declared in spec.body.items() if declared.required]
        if required:
            schema["required"] = required
        operation["requestBody"] = {"required": bool(required) and not spec.empty_body,
                                    "content": {"application/json": {"schema": schema}}}
    responses = {}
    for status, answer in spec.responses.items():
        description, schema = answer if isinstance(answer, tuple) else ("OK" if status < 300 else "", answer)
        responses[str(status)] = {"description": description or "The answer"}
        if status != 204:  # No Content: nothing to describe
            responses[str(status)]["content"] = {"application/json": {"schema": schema}}
    refusals = [400, 404, 413, 429]
    if not spec.public:
        refusals += [401, 403]
    if method != "GET":
        refusals += [409]
    if spec.body is not None:
        refusals += [415]
    for status in sorted(refusals):
        responses.setdefault(str(status), {"description": REFUSALS[status],
                                           "content": {"application/json": {"schema": ERROR}}})
    operation["responses"] = responses
    operation["security"] = [] if spec.public else [{"token": []}, {"session": []}]
    if not spec.public and spec.role != "staff":
        operation["x-seed-role"] = spec.role
    return operation


def undocumented(app) -> list[str]:
    """The API's routes that declare nothing (the tests hold this empty)."""
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if rule.rule.startswith(API_PREFIX) and not hasattr(app.view_functions[rule.endpoint], "openapi"))


def document(app, version: str, server: str | None = None) -> dict:
    paths: dict = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(API_PREFIX):
            continue
        spec = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if spec is None:
            continue
        path, params = _path(rule)
        tag = rule.rule[len(API_PREFIX):].split("/")[0] or "api"
        if tag in ("admin", "reports", "virtual-phone"):
            tag = "/".join(rule.rule[len(API_PREFIX):].split("/")[:2]).split("<")[0].rstrip("/")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(spec, method, params, rule.endpoint, tag)
    result = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Seed API", "version": version,
                 "description": "Queues, tickets, counters, appointments and settings of a Seed installation. "
                                "Every request and answer is JSON. Sign in with an API token (Settings > API "
                                "tokens): `Authorization: Bearer seed_...`. A refusal is "
                                "`{\"error\", \"message\", \"detail\"}` with a 4xx status."},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(SCHEMAS.items())),
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "An API token (Settings > API tokens)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "A signed-in person's session (the console's own calls)"},
            },
        },
    }
    if server:
        result["servers"] = [{"url": server}]
    return result
