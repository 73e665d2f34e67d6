"""What every response promises the browser, who the client is behind a proxy, and logs that
keep phone numbers out.

`init_security(app)` is one step of the factory: it wraps the WSGI app (ProxyFix, Secure
cookies over HTTPS) and sets the headers. The log filter is installed by whoever configures
logging (run.py), with the masking rule from messaging: core imports no other package of ours.
"""
import ipaddress
import logging
import re
import secrets
import threading
from collections import Counter

from flask import current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger(__name__)
HSTS = "max-age=31536000"
# Parts of the policy that do not change per request. style-src keeps 'unsafe-inline': the
# staff templates use style attributes (and the console swaps in HTML that carries them);
# scripts, the part that matters, are 'self' plus this response's nonce.
_CSP_FIXED = (
    "default-src 'self'",
    "img-src 'self' data:",
    "style-src 'self' 'unsafe-inline'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
)
_HOST = re.compile(r"[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def init_security(app) -> None:
    hops = app.config["TRUSTED_PROXIES"] = int(app.config["TRUSTED_PROXIES"] or 0)  # the environment gives "1"
    if hops < 0:
        raise ValueError("TRUSTED_PROXIES is a count of proxies in front of Seed: 0 or more.")
    app.wsgi_app = _SecureCookiesOverHttps(app.wsgi_app)
    if hops:  # outermost, so everything inside (cookies, Flask, Socket.IO) sees the client's address and scheme
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.before_request(_new_nonce)
    app.after_request(_add_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    server = app.extensions.get("socketio") and app.extensions["socketio"].server
    if server is not None:
        app.extensions["seed.socket_cap"] = SocketCap(app.config["SOCKETS_PER_ADDRESS"]).install(server)


class SocketCap:
    """At most `limit` open Socket.IO connections per client address (0: no cap).

    A screen, console or status page holds its connection all day; anyone on the network could
    open thousands to use up the server's file descriptors and memory. The cap is counted on
    Engine.IO's connect and disconnect, before any namespace sees the client; the one over it is
    answered 401 and nothing is kept. The address is the one the trusted proxies forwarded.

    Counted per process, on purpose: what the cap protects (file descriptors, memory) is each web
    worker's own, so with `run.py --workers N` an address may hold up to N x limit in all, never
    more than `limit` in one worker. A count shared through Redis would have to be cleaned up after
    a worker killed with its connections open, and would protect nothing more.
    """

    def __init__(self, limit):
        self.limit = int(limit or 0)  # the environment gives "100"
        self.lock = threading.Lock()
        self.open = Counter()  # address -> open connections
        self.address_of: dict[str, str] = {}  # Engine.IO session id -> address

    def install(self, server):
        eio = server.eio
        connect, disconnect = eio.handlers["connect"], eio.handlers["disconnect"]

        def on_connect(sid, environ):
            address = environ.get("REMOTE_ADDR") or "?"
            if not self.take(sid, address):
                log.warning("refused a Socket.IO connection: %s already holds %d", address, self.limit)
                return {"message": "Too many open connections from this address."}
            try:
                allowed = connect(sid, environ)
            except BaseException:
                self.give_back(sid)
                raise
            if allowed is not None and allowed is not True:
                self.give_back(sid)
            return allowed

        def on_disconnect(sid, *reason):
            try:
                return disconnect(sid, *reason)
            finally:
                self.give_back(sid)

        eio.on("connect", on_connect)
        eio.on("disconnect", on_disconnect)
        return self

    def take(self, sid: str, address: str) -> bool:
        with self.lock:
            if self.limit and self.open[address] >= self.limit:
                return False
            self.open[address] += 1
            self.address_of[sid] = address
            return True

    def give_back(self, sid: str) -> None:
        with self.lock:
            address = self.address_of.pop(sid, None)
            if address is not None:
                self.open[address] -= 1
                if self.open[address] <= 0:
                    del self.open[address]


def csp_nonce() -> str:
    """This response's script nonce: templates write <script nonce="{{ csp_nonce() }}">.
    Kept in the request's environ, not in `g`: an app context may outlive one request."""
    environ = request.environ
    if "seed.csp_nonce" not in environ:
        environ["seed.csp_nonce"] = secrets.token_urlsafe(18)
    return environ["seed.csp_nonce"]


def _new_nonce() -> None:
    csp_nonce()  # a value returned here would be taken for the response


def embeddable(view):
    """Mark a view that other sites may show in a frame (e.g. a display inside a signage page):
    it gets frame-ancestors from CSP_EMBED_ANCESTORS instead of 'none'."""
    view.seed_embeddable = True
    return view


def content_security_policy() -> str:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    ancestors = current_app.config["CSP_EMBED_ANCESTORS"] if getattr(view, "seed_embeddable", False) else "'none'"
    # CSP3 lets 'self' cover ws(s): of the same host, but not every browser does: say it.
    sockets = f" ws://{request.host} wss://{request.host}" if _HOST.fullmatch(request.host) else ""
    return "; ".join((
        *_CSP_FIXED,
        f"script-src 'self' 'nonce-{csp_nonce()}'",
        f"connect-src 'self'{sockets}",
        f"frame-ancestors {ancestors}",
    ))


def _add_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy())
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # A URL with a <token> is a secret (the customer's status page): no page it links to learns it.
    private = request.url_rule is not None and "token" in request.url_rule.arguments
    headers["Referrer-Policy"] = "no-referrer" if private else "strict-origin-when-cross-origin"
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


class _SecureCookiesOverHttps:
    """Cookies set over HTTPS are marked Secure. Per request rather than by SESSION_COOKIE_SECURE /
    REMEMBER_COOKIE_SECURE, which would lose the session on http://127.0.0.1 (the demo, a kiosk
    on the branch's own machine); setting those to True still forces it everywhere. WSGI level,
    because Flask writes the session cookie after every after_request hook has run."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("wsgi.url_scheme") != "https":
            return self.app(environ, start_response)

        def start(status, headers, exc_info=None):
            headers = [(k, _secure_cookie(v) if k.lower() == "set-cookie" else v) for k, v in headers]
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def _secure_cookie(value: str) -> str:
    attributes = {part.strip().lower() for part in value.split(";")[1:]}
    return value if "secure" in attributes else value + "; Secure"


def client_address() -> str | None:
    """The client's address: the peer's, or the one the trusted proxies (TRUSTED_PROXIES) forwarded."""
    return request.remote_addr


def is_local_request() -> bool:
    """From this machine's loopback, and not forwarded by a proxy we were not told to trust
    (a proxy on the same machine would make every client look local)."""
    try:
        address = ipaddress.ip_address((client_address() or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if not address.is_loopback:
        return False
    untrusted_forward = not current_app.config["TRUSTED_PROXIES"] and (
        "X-Forwarded-For" in request.headers or "Forwarded" in request.headers)
    return not untrusted_forward


# Phone numbers as they appear in URLs and messages: +, or %2B URL-encoded, then 8-15 digits.
PHONE_IN_TEXT = re.compile(r"(?:\+|%2[Bb])(\d{8,15})(?!\d)")
# What every log record has; anything else on a record came as `extra=` (a JSON log writes it).
LOG_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def mask_numbers(text: str, mask) -> str:
    """`text` with every E.164-looking number in it replaced by mask(number)."""
    return PHONE_IN_TEXT.sub(lambda m: mask("+" + m.group(1)), text)


# A customer's own link (/t/<token>: the ticket's status page, /a/<token>: a booking's page) lets
# whoever has it cancel or move the visit: a log line keeps its first characters, to tell links
# apart, and never the rest.
LINK_IN_TEXT = re.compile(r"(?<=/[ta]/)([A-Za-z0-9_-]{4})[A-Za-z0-9_-]{8,60}")


def mask_links(text: str) -> str:
    return LINK_IN_TEXT.sub(lambda m: m.group(1) + "...", text)


class PhoneMaskFilter(logging.Filter):
    """Rewrites every E.164-looking number in a record to its masked form (and every customer's
    link, mask_links): in the message, its
    arguments, the traceback and the fields passed as `extra=` (a JSON log writes those too). A
    safety net for what code and servers log without asking (request lines: /staff/inbox/+995...),
    not a licence to log numbers."""

    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def _masked(self, text: str) -> str:
        return mask_links(mask_numbers(text, self.mask))

    def filter(self, record) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as it would
            return True
        record.msg, record.args = self._masked(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._masked(record.exc_text)
        if record.stack_info:
            record.stack_info = self._masked(record.stack_info)
        for key, value in vars(record).items():
            if isinstance(value, str) and key not in LOG_RECORD_FIELDS:
                setattr(record, key, self._masked(value))
        return True


def install_log_masking(mask, *loggers) -> None:
    """Mask numbers in everything the root logger's handlers write, and in `loggers` (gunicorn's
    access and error logs, which do not propagate to the root)."""
    for logger in (logging.getLogger(), *loggers):
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, PhoneMaskFilter) for f in target.filters):
                target.addFilter(PhoneMaskFilter(mask))
