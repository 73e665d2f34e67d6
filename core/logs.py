"""How the processes log (README, "Operating"): one line per event, as text or as JSON.

LOG_FORMAT "text" (the default) writes the line a person reads, "json" one JSON object per line
for a log collector: time (UTC), level, logger, message, process, and on a request's lines its
request id, the branch it is about (when known), its method and path (never the query string:
it can carry numbers and tokens). A traceback is one string field, never lines of its own. Phone
numbers are masked either way (core/security.PhoneMaskFilter, and once more over the whole JSON
line).

Every request gets an id: the X-Request-ID it came with when that looks like one (nginx sends its
$request_id), else a new one. It is in the response's X-Request-ID header, on every line logged
while the request runs and on its access line, so a complaint ("it failed at 10:02") leads to
every line of that request. The id lives in the request's WSGI environ, which Flask's request
context carries; under gevent that context is each greenlet's own (and Flask-SocketIO handlers
run in the context of the request that opened the socket, so their lines carry that id).

`configure()` is called by whoever starts a process (run.py, `flask ... scheduler run`,
`flask ... modem run`); `init_app(app)` only checks the settings and adds the request ids.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import uuid
from datetime import datetime, timezone

from flask import has_request_context, request

from .config import ConfigError
from .security import LOG_RECORD_FIELDS, PhoneMaskFilter, install_log_masking, mask_links, mask_numbers

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULTS = {"LOG_FORMAT": "text", "LOG_LEVEL": "INFO"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HEADER = "X-Request-ID"
# An incoming id is kept only when it cannot break a log line or smuggle anything into one.
SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Keys in the request's WSGI environ. Flask-SocketIO hands Flask a copy of the environ, so what the
# app learns during the request (the branch) goes into a dict that the copy shares with the
# environ gunicorn's access line reads.
REQUEST_ID = "seed.request_id"
CONTEXT = "seed.log_context"

# The settings of the app this process made (instance/config.py included): a process makes one,
# and from then on its settings are the ones configure() uses.
_from_app: dict = {}
# What configure() set up last: gunicorn's logger (run.py) writes in the same format.
_in_use = {"format": "text", "level": logging.INFO}


def init_app(app) -> None:
    _from_app.update(LOG_FORMAT=parse_format(app.config.get("LOG_FORMAT")),
                     LOG_LEVEL=parse_level(app.config.get("LOG_LEVEL")))
    app.wsgi_app = RequestIds(app.wsgi_app)  # outermost: Socket.IO's requests get an id too
    app.url_value_preprocessor(_note_branch_asked)


# ---- settings --------------------------------------------------------------------------------

def parse_format(value) -> str:
    text = str(value or DEFAULTS["LOG_FORMAT"]).strip().lower()
    if text not in FORMATS:
        raise ConfigError(f"LOG_FORMAT is {value!r}: text or json.")
    return text


def parse_level(value) -> int:
    if isinstance(value, int) and logging.getLevelName(value) in LEVELS:
        return value
    text = str(value or DEFAULTS["LOG_LEVEL"]).strip().upper()
    if text not in LEVELS:
        raise ConfigError(f"LOG_LEVEL is {value!r}: one of {', '.join(LEVELS)}.")
    return logging.getLevelName(text)


def _setting(key: str, given, parse):
    if given is not None:
        return parse(given)
    if key in _from_app:
        return _from_app[key]
    try:
        return parse(os.environ.get(key))
    except ConfigError:  # before the app exists: the app refuses it, with this message, a moment later
        return parse(None)


def format_in_use() -> str:
    return _in_use["format"]


# ---- the process's log -----------------------------------------------------------------------

def configure(fmt: str | None = None, level: str | int | None = None, stream=None) -> logging.Handler:
    """The root logger's one handler (stderr unless `stream`) in LOG_FORMAT at LOG_LEVEL: the ones
    given, else the app's once it is made, else the environment's. Numbers masked. Run it again
    after the migrations: alembic.ini replaces the root handler."""
    from .privacy import masked  # (privacy reaches the scope rule, which notes branches here)

    fmt = _setting("LOG_FORMAT", fmt, parse_format)
    level = _setting("LOG_LEVEL", level, parse_level)
    handler = make_handler(fmt, stream if stream is not None else sys.stderr, masked)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # two lines per job run; our jobs log what they do
    install_log_masking(masked)
    _quiet_flask_default_handler()
    _in_use.update(format=fmt, level=level)
    return handler


def make_handler(fmt: str, stream, mask) -> logging.Handler:
    """A handler writing `fmt` lines to `stream` with the request's context and numbers masked."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContext())  # before the mask: what it adds (the path) is masked too
    handler.addFilter(PhoneMaskFilter(mask))
    handler.setFormatter(JsonFormatter(mask) if parse_format(fmt) == "json" else TextFormatter())
    return handler


def _quiet_flask_default_handler() -> None:
    """Flask gives the app's logger ("core") a handler of its own when nothing handles it yet
    (`flask ...` commands make the app before logging is set up): every core.* line would then
    be written twice, once in Flask's format."""
    from flask.logging import default_handler

    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and default_handler in logger.handlers:
            logger.removeHandler(default_handler)


def dress_gunicorn(error_log: logging.Logger, access_log: logging.Logger) -> None:
    """gunicorn's own loggers (they do not propagate to the root): its error log at LOG_LEVEL, and
    both in JSON when that is the format (in text, gunicorn's lines as they always were)."""
    from .privacy import masked

    error_log.setLevel(_in_use["level"])
    if _in_use["format"] == "json":
        for handler in (*error_log.handlers, *access_log.handlers):
            handler.setFormatter(JsonFormatter(masked))


def access_fields(environ: dict, status, seconds: float) -> dict:
    """One request's access line, as JSON fields: no query string, numbers masked by the filter."""
    code = str(status).split(None, 1)[0]  # gunicorn has "200 OK"
    return {
        "method": environ.get("REQUEST_METHOD"),
        "path": path_of(environ),
        "status": int(code) if code.isdigit() else code,
        "duration_ms": round(seconds * 1000, 1),
        "request_id": environ.get(REQUEST_ID),
        "branch": environ.get(CONTEXT, {}).get("branch"),
        "remote_addr": environ.get("REMOTE_ADDR"),
    }


# ---- formats ---------------------------------------------------------------------------------

class TextFormatter(logging.Formatter):
    """Today's line, with the request's id at its end when there is one."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record) -> str:
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} request_id={request_id}" if request_id else line


class JsonFormatter(logging.Formatter):
    """One JSON object per event, on one line (json.dumps escapes newlines)."""

    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def format(self, record) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "branch", "method", "path"):
            if getattr(record, key, None) is not None:
                entry[key] = getattr(record, key)
        entry["process"] = record.process
        for key, value in vars(record).items():
            if key not in LOG_RECORD_FIELDS and not key.startswith("_") and value is not None:
                entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        trace = "\n".join(part for part in (record.exc_text, record.stack_info and self.formatStack(record.stack_info))
                          if part)
        if trace:
            entry["exception"] = trace
        # Masked once more over the whole line: a number inside a structure passed as `extra=`.
        return mask_links(mask_numbers(json.dumps(entry, default=str), self.mask))


# ---- the request's context -------------------------------------------------------------------

def request_id_for(incoming: str | None) -> str:
    return incoming if incoming and SANE_ID.fullmatch(incoming) else uuid.uuid4().hex


class RequestIds:
    """WSGI: the request's id in its environ and in the response's X-Request-ID header."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        request_id = environ[REQUEST_ID] = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        environ[CONTEXT] = {}

        def start(status, headers, exc_info=None):
            if not any(name.lower() == "x-request-id" for name, _ in headers):
                headers = [*headers, (HEADER, request_id)]
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def note_branch(branch_id) -> None:
    """The branch this request is about, for its log lines: the first one named (a branch in the
    URL, or the first the scope rule resolves)."""
    if branch_id is not None and has_request_context():
        request.environ.get(CONTEXT, {}).setdefault("branch", branch_id)


def _note_branch_asked(_endpoint, values) -> None:
    if values and isinstance(values.get("branch_id"), int):
        note_branch(values["branch_id"])


def path_of(environ: dict) -> str:
    return environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")


def request_fields() -> dict:
    if not has_request_context():
        return {}
    environ = request.environ
    return {"request_id": environ.get(REQUEST_ID), "branch": environ.get(CONTEXT, {}).get("branch"),
            "method": environ.get("REQUEST_METHOD"), "path": path_of(environ)}


class RequestContext(logging.Filter):
    """Puts the current request's id, branch, method and path on each record (as attributes, not
    in the message): read when the record is written, in the greenlet or thread that logs it."""

    def filter(self, record) -> bool:
        for key, value in request_fields().items():
            if value is not None:
                record.__dict__.setdefault(key, value)
        return True
