"""What every view shares: who is asking, its transaction, CSRF, error pages and security headers."""
from __future__ import annotations

from typing import Callable, TypeVar

from flask import abort, current_app, jsonify, request
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms.validators import ValidationError as CSRFValidationError

from ..core import schools
from ..core.i18n import gettext as _
from ..core.logs import get_logger
from ..core.state import PluginState
from ..core.urls import sign_in_url
from ..errors import PaymentsError
from ..web.rendering import render

log = get_logger(__name__)
T = TypeVar("T")

WEBHOOK = "lms_stripe.webhook"
#: Views that take no CSRF token: Stripe signs the webhook; `unrouted` only answers 404 or 405.
CSRF_EXEMPT = {WEBHOOK, "lms_stripe.unrouted"}
MAX_FORM_BYTES = 64 * 1024


def state() -> PluginState:
    return current_app.extensions["lms_stripe"]


def step(service: Callable[..., T], *args, **kwargs) -> T:
    """Run one step of the request's work and commit it: a view owns its transactions, services never
    commit. A step that calls Stripe calls it before writing; when it raises one of the plugin's errors,
    what it recorded of the refusal (a request marked failed) is committed too; anything else rolls back."""
    session = state().session
    try:
        result = service(*args, **kwargs)
    except PaymentsError:
        session.commit()
        raise
    except BaseException:
        session.rollback()
        raise
    session.commit()
    return result


def current_user():
    return state().host.current_user()


def require_user():
    user = current_user()
    if user is None:
        abort(401)
    return user


def require_admin():
    user = require_user()
    if not state().host.can_manage_payments(user):
        abort(403)
    return user


def display_names(user_ids) -> dict[str, str]:
    """The host's names of these users (their id for one the host no longer knows)."""
    host = state().host
    names = {}
    for user_id in filter(None, user_ids):
        user = host.get_user(user_id)
        names[user_id] = host.user_display_name(user) if user is not None else user_id
    return names


def course_titles(course_ids) -> dict[str, str]:
    """The host's titles of these courses (their id for one the host no longer knows)."""
    host = state().host
    titles = {}
    for course_id in filter(None, course_ids):
        course = host.get_course(course_id)
        titles[course_id] = host.course_title(course) if course is not None else course_id
    return titles


def actor_id(user) -> str | None:
    return state().host.user_id(user) if user is not None else None


def course_or_404(course_id: str):
    """The host's course ``course_id`` of the request's school (a course of another school: 404)."""
    host = state().host
    course = host.get_course(course_id) if len(course_id) <= 64 else None
    if course is None or not schools.owns_course(host, course):
        abort(404)
    return course


def posted_currency() -> str | None:
    """The currency of the page the learner clicked Buy on (the shop checks it is one the school accepts)."""
    return (request.form.get("currency") or "").strip().upper()[:3] or None


def wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return request.is_json or (best == "application/json" and request.accept_mimetypes[best] >
                               request.accept_mimetypes["text/html"])


def error_response(status: int, message: str, *, errors: dict | None = None, sign_in: str | None = None):
    if wants_json():
        body = {"error": {"status": status, "message": message}}
        if errors:
            body["error"]["fields"] = errors
        return jsonify(body), status
    return render("lms_stripe/error.html", status=status, message=message, sign_in=sign_in), status


_HTTP_MESSAGES = {
    400: lambda: _("The request could not be understood."),
    401: lambda: _("Sign in to continue."),
    403: lambda: _("You are not allowed to do this."),
    404: lambda: _("This page does not exist, or is not yours."),
    405: lambda: _("This action is not available this way."),
    413: lambda: _("The request is too large."),
    415: lambda: _("This content type is not accepted."),
}


def _has_control_characters(values) -> bool:
    return any("\x00" in value or any(ord(c) < 32 and c not in "\t\r\n" for c in value) for value in values)


def _unrouted(rest: str = ""):
    """Under the plugin's prefix, a URL no view takes gets the plugin's own error page (405 if another
    method would have matched), with its security headers, rather than the bare routing error."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in ("GET", "POST"):
        if method == request.method:
            continue
        try:
            endpoint, _args = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != "lms_stripe.unrouted":
            abort(405)
    abort(404)


def exempt_webhook_from_host_csrf(app) -> None:
    """Exempt Stripe's webhook, and only it, from the host's Flask-WTF ``CSRFProtect`` if it has one:
    Stripe signs its deliveries and sends no CSRF token, so the host's check would refuse every one (the
    plugin's other views check their tokens themselves, and stay under the host's check too)."""
    csrf = app.extensions.get("csrf")
    view = app.view_functions.get(WEBHOOK)
    if csrf is not None and view is not None and callable(getattr(csrf, "exempt", None)):
        csrf.exempt(view)  # a set of view names: idempotent


def install(bp) -> None:
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    bp.add_url_rule("/", "unrouted", _unrouted, methods=methods)
    bp.add_url_rule("/<path:rest>", "unrouted", _unrouted, methods=methods)

    @bp.url_value_preprocessor
    def _exempt_webhook(endpoint, _values):
        # For a host that registers CSRFProtect after the plugin. Its check is an app-wide before_request,
        # which runs before any of the blueprint's; the blueprint's URL value preprocessors run earlier.
        if endpoint == WEBHOOK:
            exempt_webhook_from_host_csrf(current_app)

    @bp.before_request
    def _check_request():
        if request.content_length and request.content_length > MAX_FORM_BYTES and \
                request.endpoint not in CSRF_EXEMPT:
            abort(413)
        if _has_control_characters([request.path, *request.args.keys(), *request.args.values()]):
            return error_response(400, _("The address contains characters that are not allowed."))
        if request.method == "POST" and request.endpoint not in CSRF_EXEMPT and \
                any("\x00" in value for value in request.form.values()):
            return error_response(400, _("The form contains characters that are not allowed."))
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.endpoint not in CSRF_EXEMPT:
            token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken")
            try:
                validate_csrf(token)
            except (CSRFValidationError, CSRFError):
                return error_response(400, _("This form has expired or was not sent from this site: "
                                             "reload the page and try again."))
        return None

    @bp.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @bp.errorhandler(PaymentsError)
    def _payments_error(err: PaymentsError):
        return error_response(err.status_code, err.message)

    @bp.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code = err.code or 500
        explain = _HTTP_MESSAGES.get(code)
        # A visitor who must sign in is shown where, and brought back to the page they asked for.
        back = request.full_path.rstrip("?") if code == 401 and request.method == "GET" else None
        return error_response(code, explain() if explain else err.description or "",
                              sign_in=sign_in_url(state().host, back) if back else None)
