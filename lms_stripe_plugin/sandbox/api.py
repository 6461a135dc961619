"""The Stripe HTTP API under ``/v1``: authentication, idempotency, fault injection and the endpoints."""

from __future__ import annotations

import fnmatch
import socket
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from . import (account_links, checkout, connect, credit_notes, customer_balance, invoices, payment_method_configurations,
               payment_records, refunds, resources)
from .errors import StripeError, invalid_param, unrecognized_url
from .faults import Fault, fault_error
from .idempotency import SavedResponse, fingerprint_of
from .ids import request_id
from .listing import expand, filter_range, list_envelope, paginate
from .params import Params, parse_pairs
from .schema import endpoint_schema, validate
from .state import API_VERSION, SandboxState

bp = Blueprint("stripe_sandbox_api", __name__, url_prefix="/v1")

_PAGING = {"created", "ending_before", "limit", "starting_after"}

# Collection -> (object type, the list filters the sandbox implements {param: field}).
COLLECTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "customers": ("customer", {"email": "email"}),
    "tax_rates": ("tax_rate", {"active": "active", "inclusive": "inclusive"}),
    "invoices": ("invoice", {"customer": "customer", "status": "status"}),
    "invoice_payments": ("invoice_payment", {"invoice": "invoice", "status": "status"}),
    "invoiceitems": ("invoiceitem", {"customer": "customer", "invoice": "invoice"}),
    "payment_intents": ("payment_intent", {"customer": "customer"}),
    "charges": ("charge", {"customer": "customer", "payment_intent": "payment_intent"}),
    "refunds": ("refund", {"charge": "charge", "payment_intent": "payment_intent"}),
    "credit_notes": ("credit_note", {"invoice": "invoice", "customer": "customer"}),
    "disputes": ("dispute", {"charge": "charge", "payment_intent": "payment_intent"}),
    "coupons": ("coupon", {}),
    "promotion_codes": ("promotion_code", {"code": "code", "customer": "customer", "active": "active"}),
    "products": ("product", {"active": "active"}),
    "prices": ("price", {"active": "active", "currency": "currency", "product": "product"}),
    "payment_method_configurations": ("payment_method_configuration", {"active": "active"}),
    "accounts": ("account", {}),
    "application_fees": ("application_fee", {"charge": "charge"}),
}


def _state() -> SandboxState:
    return current_app.extensions["stripe_sandbox"]


def _params() -> Params:
    return Params(g.stripe_params)


def base_url(state: SandboxState) -> str:
    """The address put into ``url``, ``invoice_pdf`` and similar fields."""
    return (state.config.public_url or request.host_url).rstrip("/")


# -- request pipeline ------------------------------------------------------------------------


@bp.before_request
def _before() -> Response | None:
    state = _state()
    g.stripe_request = {"id": request_id(), "idempotency_key": request.headers.get("Idempotency-Key")}
    fault = state.faults.take(request.method, request.path)
    if fault is not None:
        response = _apply_fault(state, fault)
        if response is not None:
            return response
    g.api_key = _authenticate()
    g.account_scope = state.enter_account(_acting_account(state))
    g.stripe_params = parse_pairs([*request.args.items(multi=True), *request.form.items(multi=True)])
    _check_params()
    return _begin_idempotency(state)


def _check_params() -> None:
    """Refuse what the pinned API refuses, before the endpoint runs (so nothing is kept for an idempotency key)."""
    schema = endpoint_schema(request.method, _path_template())
    if schema is not None:
        validate(schema, g.stripe_params)


def _path_template() -> str:
    """``/v1/customers/{id}`` for ``/v1/customers/cus_123``: the key of :data:`schema.SCHEMAS`."""
    if request.url_rule is None:
        return request.path
    template = request.url_rule.rule
    for name, value in (request.view_args or {}).items():
        template = template.replace(f"<{name}>", value if name == "collection" else "{id}")
    return template


def _apply_fault(state: SandboxState, fault: Fault) -> Response | None:
    if fault.kind == "connection":
        return _drop_connection()
    if fault.kind == "timeout" and fault.after:
        g.stall_after = fault.timeout_seconds  # carry the request out, hold back the answer
        return None
    if fault.kind == "500" and fault.after:
        g.fail_after = fault_error(fault)  # carry the request out, answer a 500 (kept for the key)
        return None
    if fault.kind == "timeout":
        state.stop_event.wait(fault.timeout_seconds)
    raise fault_error(fault)


def _drop_connection() -> Response:
    sock = request.environ.get("werkzeug.socket")
    if sock is None:  # no real socket (test client): the closest thing is an aborted call
        raise ConnectionAbortedError("The Stripe sandbox dropped the connection (injected fault).")
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    # Never reaches the client: the socket is already shut.
    return Response(status=500)


def _authenticate() -> str:
    header = request.headers.get("Authorization", "")
    key = header[7:].strip() if header.startswith("Bearer ") else None
    if key is None and request.authorization is not None:
        key = request.authorization.username  # curl -u sk_test_...:
    if not key:
        raise StripeError(
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api"
            "#authentication for details, or we can help at https://support.stripe.com/.", status=401)
    if not key.startswith(("sk_test_", "rk_test_")) or len(key) <= 8:
        raise StripeError(f"Invalid API Key provided: {_mask(key)}", status=401, code="api_key_invalid")
    return key


def _acting_account(state: SandboxState) -> str | None:
    """The connected account a ``Stripe-Account`` header makes the request act as (None: the platform itself);
    403 ``account_invalid`` unless it is one of the platform's accounts."""
    header = request.headers.get("Stripe-Account")
    if header is None:
        return None
    account = connect.connected_account(state, header.strip())
    if account is None:
        raise connect.no_access(_mask(g.api_key), header)
    return account["id"]


def _mask(key: str) -> str:
    if len(key) <= 12:
        return "*" * len(key)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def _begin_idempotency(state: SandboxState) -> Response | None:
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return None  # Stripe ignores keys on GET and DELETE
    if len(key) > 255:
        raise invalid_param(None, "Idempotency-Key must be at most 255 characters long.")
    # Keys belong to an account (all its API keys share them), not to one API key.
    scope, endpoint = (request.headers.get("Stripe-Account", ""), key), f"{request.method} {request.path}"
    saved = state.idempotency.begin(scope, endpoint, fingerprint_of(g.stripe_params))
    if saved is not None:
        return _replay(saved)
    g.idempotency = (scope, endpoint, fingerprint_of(g.stripe_params))
    return None


def _replay(saved: SavedResponse) -> Response:
    response = Response(saved.body, status=saved.status, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    response.headers["Original-Request"] = saved.request_id
    _no_retry_if_saved(response)
    return response


def _no_retry_if_saved(response: Response) -> None:
    # A saved 5xx is replayed as it is, so a retry cannot help: Stripe says so with this header,
    # which the SDKs obey (stripe-python's _should_retry).
    if response.status_code >= 500:
        response.headers["Stripe-Should-Retry"] = "false"


@bp.after_request
def _after(response: Response) -> Response:
    state = _state()
    response.headers["Request-Id"] = g.stripe_request["id"]
    response.headers["Stripe-Version"] = request.headers.get("Stripe-Version", API_VERSION)
    failure = g.pop("fail_after", None)
    if failure is not None:
        response = _stripe_error_response(failure, response)
    pending = g.pop("idempotency", None)
    if pending is not None:
        # The endpoint ran: its answer is kept for the key whatever its status, as Stripe does.
        scope, endpoint, fingerprint = pending
        saved = SavedResponse(endpoint, fingerprint, response.status_code, response.get_data(), g.stripe_request["id"])
        state.idempotency.save(scope, saved)
        _no_retry_if_saved(response)
    stall = g.pop("stall_after", None)
    if stall:
        state.stop_event.wait(stall)
    return response


def _stripe_error_response(error: StripeError, replaced: Response) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    response.headers.update({k: v for k, v in replaced.headers.items() if k in ("Request-Id", "Stripe-Version")})
    return response


@bp.teardown_request
def _teardown(_exc: BaseException | None) -> None:
    pending = g.pop("idempotency", None)
    if pending is not None:
        _state().idempotency.release(pending[0])
    scope = g.pop("account_scope", None)
    if scope is not None:
        _state().leave_account(scope)


# -- helpers ---------------------------------------------------------------------------------


def _respond(obj: dict[str, Any], include: Callable[[dict[str, Any], list[str]], None] | None = None) -> Response:
    state = _state()
    paths = _params().strings("expand")
    with state.lock:
        body = state.render(obj)
        if include is not None:
            include(body, paths)
        return jsonify(expand(state, body, paths))


def _list(items: list[dict[str, Any]], filters: dict[str, str]) -> Response:
    state = _state()
    params = _params()
    params.reject_unimplemented(_PAGING | set(filters))
    with state.lock:
        body = paginate(state, items, params, request.path, filters)
        return jsonify(expand(state, body, params.strings("expand")))


def _only_expand() -> None:
    _params().reject_unimplemented(set())


# -- creation endpoints --------------------------------------------------------------------------


@bp.post("/customers")
def create_customer() -> Response:
    return _respond(resources.create_customer(_state(), _params()))


@bp.post("/customers/<customer_id>")
def update_customer(customer_id: str) -> Response:
    return _respond(resources.update_customer(_state(), customer_id, _params()))


@bp.post("/customers/<customer_id>/balance_transactions")
def create_balance_transaction(customer_id: str) -> Response:
    return _respond(customer_balance.create_transaction(_state(), customer_id, _params()))


@bp.get("/customers/<customer_id>/balance_transactions")
def list_balance_transactions(customer_id: str) -> Response:
    return _list(customer_balance.transactions(_state(), customer_id), {"invoice": "invoice"})


@bp.get("/customers/<customer_id>/balance_transactions/<transaction_id>")
def retrieve_balance_transaction(customer_id: str, transaction_id: str) -> Response:
    _only_expand()
    return _respond(customer_balance.transaction(_state(), customer_id, transaction_id))


@bp.post("/tax_rates")
def create_tax_rate() -> Response:
    return _respond(resources.create_tax_rate(_state(), _params()))


@bp.post("/coupons")
def create_coupon() -> Response:
    return _respond(resources.create_coupon(_state(), _params()))


@bp.post("/promotion_codes")
def create_promotion_code() -> Response:
    return _respond(resources.create_promotion_code(_state(), _params()))


@bp.post("/refunds")
def create_refund() -> Response:
    return _respond(refunds.create_refund_from_params(_state(), _params()))


@bp.post("/credit_notes")
def create_credit_note() -> Response:
    return _respond(credit_notes.create_credit_note(_state(), _params()))


@bp.post("/credit_notes/<note_id>/void")
def void_credit_note(note_id: str) -> Response:
    _only_expand()
    return _respond(credit_notes.void_credit_note(_state(), note_id))


# -- payment method configurations ------------------------------------------------------------------


@bp.post("/payment_method_configurations")
def create_payment_method_configuration() -> Response:
    return _respond(payment_method_configurations.create_configuration(_state(), _params()))


@bp.post("/payment_method_configurations/<config_id>")
def update_payment_method_configuration(config_id: str) -> Response:
    return _respond(payment_method_configurations.update_configuration(_state(), config_id, _params()))


@bp.get("/payment_method_configurations")
def list_payment_method_configurations() -> Response:
    """Filters ``active`` and ``application`` (the sandbox has no Connect application: only ``""`` matches)."""
    params = _params()
    items = _state().all("payment_method_configuration")
    if "application" in params.data:
        wanted = params.raw("application")
        items = [c for c in items if (c["application"] or "") == wanted]
    g.stripe_params = {k: v for k, v in g.stripe_params.items() if k != "application"}
    return _list(items, {"active": "active"})


# -- Connect: connected accounts and their onboarding links ----------------------------------------------


@bp.post("/accounts")
def create_account() -> Response:
    return _respond(connect.create_account(_state(), _params()))


@bp.get("/accounts/<account_id>")
def retrieve_account(account_id: str) -> Response:
    _only_expand()
    account = _state().get(account_id, "account")
    if account is None:
        raise connect.no_access(_mask(g.api_key), account_id)
    return _respond(account)


@bp.post("/accounts/<account_id>")
def update_account(account_id: str) -> Response:
    if _state().get(account_id, "account") is None:
        raise connect.no_access(_mask(g.api_key), account_id)
    return _respond(connect.update_account(_state(), account_id, _params()))


@bp.post("/account_links")
def create_account_link() -> Response:
    state = _state()
    _params().reject_unimplemented({"account", "collect", "collection_options", "refresh_url", "return_url", "type"})
    link = account_links.create_account_link(state, _params(), base_url(state))
    return jsonify(link)


# -- invoices ------------------------------------------------------------------------------------


@bp.post("/invoices")
def create_invoice() -> Response:
    state = _state()
    return _respond(invoices.create_invoice(state, _params(), base_url(state)))


@bp.get("/invoices")
def list_invoices() -> Response:
    params = _params()
    items = filter_range(_state().all("invoice"), params, "due_date")
    g.stripe_params = {k: v for k, v in g.stripe_params.items() if k != "due_date"}
    return _list(items, {"customer": "customer", "status": "status", "collection_method": "collection_method"})


@bp.post("/invoices/<invoice_id>/add_lines")
def add_invoice_lines(invoice_id: str) -> Response:
    return _respond(invoices.add_lines(_state(), invoice_id, _params()))


@bp.post("/invoices/<invoice_id>/finalize")
def finalize_invoice(invoice_id: str) -> Response:
    return _respond(invoices.finalize_invoice(_state(), invoice_id, _params()))


@bp.post("/invoices/<invoice_id>/send")
def send_invoice(invoice_id: str) -> Response:
    _only_expand()
    return _respond(invoices.send_invoice(_state(), invoice_id))


@bp.post("/invoices/<invoice_id>/void")
def void_invoice(invoice_id: str) -> Response:
    _only_expand()
    return _respond(invoices.void_invoice(_state(), invoice_id))


@bp.post("/invoices/<invoice_id>/mark_uncollectible")
def mark_invoice_uncollectible(invoice_id: str) -> Response:
    _only_expand()
    return _respond(invoices.mark_uncollectible(_state(), invoice_id))


@bp.post("/invoices/<invoice_id>/attach_payment")
def attach_invoice_payment(invoice_id: str) -> Response:
    return _respond(invoices.attach_payment(_state(), invoice_id, _params()))


@bp.post("/invoiceitems")
def create_invoice_item() -> Response:
    return _respond(invoices.create_invoice_item(_state(), _params()))


@bp.post("/payment_records/report_payment")
def report_payment() -> Response:
    return _respond(payment_records.report_payment(_state(), _params()))


@bp.get("/payment_records/<record_id>")
def retrieve_payment_record(record_id: str) -> Response:
    _only_expand()
    return _respond(_state().require(record_id, "payment_record"))


@bp.get("/invoice_payments")
def list_invoice_payments() -> Response:
    """Filters ``invoice``, ``status`` and ``payment[type]`` with ``payment[payment_intent]`` or
    ``payment[payment_record]``."""
    params = _params()
    items = _state().all("invoice_payment")
    payment = params.sub("payment")
    if payment.data:
        payment.reject_unimplemented({"type", "payment_intent", "payment_record"})
        kind = payment.string("type", required=True, choices=("payment_intent", "payment_record"))
        items = [p for p in items if p["payment"]["type"] == kind]
        for key in ("payment_intent", "payment_record"):
            if payment.has(key):
                items = [p for p in items if p["payment"].get(key) == payment.string(key)]
    g.stripe_params = {k: v for k, v in g.stripe_params.items() if k != "payment"}
    return _list(items, {"invoice": "invoice", "status": "status"})


# -- checkout sessions ---------------------------------------------------------------------------


def _include_line_items(session: dict[str, Any]) -> Callable[[dict[str, Any], list[str]], None]:
    def include(body: dict[str, Any], paths: list[str]) -> None:
        if any(path.split(".")[0] == "line_items" for path in paths):
            items = checkout.line_item_objects(_state(), session)
            body["line_items"] = list_envelope(items, f"/v1/checkout/sessions/{session['id']}/line_items")

    return include


@bp.post("/checkout/sessions")
def create_session() -> Response:
    state = _state()
    session = checkout.create_session(state, _params(), base_url(state))
    return _respond(session, _include_line_items(session))


@bp.get("/checkout/sessions")
def list_sessions() -> Response:
    state = _state()
    checkout.sweep_expired_sessions(state)
    filters = {"customer": "customer", "payment_intent": "payment_intent", "status": "status"}
    return _list(state.all("checkout.session"), filters)


@bp.get("/checkout/sessions/<session_id>")
def retrieve_session(session_id: str) -> Response:
    _only_expand()
    session = checkout.checked_session(_state(), session_id)
    return _respond(session, _include_line_items(session))


@bp.post("/checkout/sessions/<session_id>/expire")
def expire_session(session_id: str) -> Response:
    _only_expand()
    session = checkout.expire_session(_state(), session_id)
    return _respond(session, _include_line_items(session))


@bp.get("/checkout/sessions/<session_id>/line_items")
def session_line_items(session_id: str) -> Response:
    session = checkout.checked_session(_state(), session_id)
    return _list(checkout.line_item_objects(_state(), session), {})


@bp.get("/invoices/<invoice_id>/lines")
def invoice_lines(invoice_id: str) -> Response:
    invoice = _state().require(invoice_id, "invoice")
    return _list(invoice["lines"]["data"], {})


@bp.get("/credit_notes/<note_id>/lines")
def credit_note_lines(note_id: str) -> Response:
    note = _state().require(note_id, "credit_note")
    return _list(note["lines"]["data"], {})


@bp.get("/charges/<charge_id>/refunds")
def charge_refunds(charge_id: str) -> Response:
    charge = _state().require(charge_id, "charge")
    return _list([r for r in _state().all("refund") if r["charge"] == charge["id"]], {})


# -- disputes ----------------------------------------------------------------------------------


@bp.post("/disputes/<dispute_id>")
def update_dispute(dispute_id: str) -> Response:
    return _respond(refunds.update_dispute(_state(), dispute_id, _params()))


@bp.post("/disputes/<dispute_id>/close")
def close_dispute(dispute_id: str) -> Response:
    _only_expand()
    return _respond(refunds.close_dispute(_state(), dispute_id, "lost"))


# -- events ------------------------------------------------------------------------------------


@bp.get("/events")
def list_events() -> Response:
    params = _params()
    events = _state().all("event")
    wanted_type, wanted_types = params.string("type"), params.strings("types")
    if wanted_type:
        events = [e for e in events if fnmatch.fnmatchcase(e["type"], wanted_type)]
    if wanted_types:
        events = [e for e in events if e["type"] in wanted_types]
    g.stripe_params = {k: v for k, v in g.stripe_params.items() if k not in ("type", "types")}
    return _list(events, {})


# -- generic retrieve and list -----------------------------------------------------------------------


@bp.get("/<collection>")
def list_collection(collection: str) -> Response:
    if collection not in COLLECTIONS:
        raise unrecognized_url(request.method, request.path)
    object_type, filters = COLLECTIONS[collection]
    return _list(_state().all(object_type), filters)


@bp.get("/<collection>/<object_id>")
def retrieve(collection: str, object_id: str) -> Response:
    object_type = "event" if collection == "events" else COLLECTIONS.get(collection, (None,))[0]
    if object_type is None:
        raise unrecognized_url(request.method, request.path)
    _only_expand()
    return _respond(_state().require(object_id, object_type))


@bp.route("/<path:_rest>", methods=["GET", "POST", "DELETE", "PUT", "PATCH"])
def unknown(_rest: str) -> Response:
    raise unrecognized_url(request.method, request.path)
