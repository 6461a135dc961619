"""Sandbox-only control endpoints under ``/_sandbox`` (JSON, no authentication)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from .errors import invalid_param
from .faults import fault_from_json
from .invoice_paying import pay_invoice, settle_invoice_debit
from .payments import SEPA_SUCCEEDS, PaymentAttempt, pay_session, settle_session, success_redirect
from .refunds import close_dispute, create_refund, fail_refund, open_dispute
from .state import SandboxState

bp = Blueprint("stripe_sandbox_control", __name__, url_prefix="/_sandbox")

# Used when a test pays without giving an email and the session knows none.
DEFAULT_EMAIL = "learner@example.com"


def _state() -> SandboxState:
    return current_app.extensions["stripe_sandbox"]


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _render(obj: dict[str, Any]) -> dict[str, Any]:
    return _state().render(obj)


@bp.post("/reset")
def reset() -> Response:
    """Empty the sandbox (the seeded promotion codes come back)."""
    _state().reset()
    return jsonify({"reset": True, "counts": _state().counts()})


@bp.get("/state")
def state_summary() -> Response:
    """Counts of each object type, plus the sandbox clock and pending deliveries."""
    state = _state()
    return jsonify({"counts": state.counts(), "now": state.now(),
                    "pending_deliveries": state.deliverer.pending(), "faults": len(state.faults.list())})


@bp.post("/checkout/sessions/<session_id>/pay")
def pay(session_id: str) -> Response:
    """Pay like the hosted page does; 402 with Stripe's decline error when the card is declined."""
    state = _state()
    body = _body()
    session = pay_session(state, session_id, attempt_from_json(body))
    return jsonify({"session": _render(session), "redirect_url": success_redirect(state, session)})


def attempt_from_json(body: dict[str, Any]) -> PaymentAttempt:
    """A payment attempt from the control endpoint's JSON, with working defaults for everything."""
    card = str(body.get("card") or ("" if body.get("wallet") else "4242424242424242"))
    amex = card.replace(" ", "").startswith(("34", "37"))
    return PaymentAttempt(
        method=str(body.get("method") or "card"),
        card_number=card,
        card_expiry=str(body.get("expiry") or "12/34"),
        card_cvc=str(body.get("cvc") or ("1234" if amex else "123")),
        iban=str(body.get("iban") or SEPA_SUCCEEDS),
        email=body.get("email") or DEFAULT_EMAIL,
        name=body.get("name"),
        promotion_code=body.get("promotion_code"),
        terms_accepted=bool(body.get("terms_accepted", True)),
        country=body.get("country"),
        wallet=body.get("wallet"),
    )


@bp.route("/account", methods=["GET", "POST"])
def account() -> Response:
    """The account's settings: ``{"terms_of_service_url": "https://..." | null, "business_name": "...",
    "business_address": ["line", ...]}`` sets them (the public details of the Dashboard's Business settings)."""
    state = _state()
    body = _body()
    if request.method == "POST" and "terms_of_service_url" in body:
        url = body["terms_of_service_url"]
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise invalid_param("terms_of_service_url", "terms_of_service_url must be an http(s) URL or null.")
        state.config.terms_of_service_url = url
    if request.method == "POST" and "business_name" in body:
        name = body["business_name"]
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 100:
            raise invalid_param("business_name", "business_name must be a name of 1 to 100 characters.")
        state.config.business_name = name.strip()
    if request.method == "POST" and "business_address" in body:
        lines = body["business_address"]
        if not isinstance(lines, list) or len(lines) > 5 or not all(isinstance(x, str) and len(x) <= 200 for x in lines):
            raise invalid_param("business_address", "business_address must be a list of at most 5 lines.")
        state.config.business_address = tuple(line.strip() for line in lines if line.strip())
    return jsonify({"terms_of_service_url": state.config.terms_of_service_url,
                    "business_name": state.config.business_name,
                    "business_address": list(state.config.business_address)})


@bp.post("/checkout/sessions/<session_id>/settle")
def settle(session_id: str) -> Response:
    """Settle a delayed (SEPA) payment with ``{"outcome": "succeeded"|"failed"}``."""
    outcome = _body().get("outcome")
    return jsonify(_render(settle_session(_state(), session_id, outcome)))


@bp.post("/invoices/<invoice_id>/pay")
def pay_hosted_invoice(invoice_id: str) -> Response:
    """Pay what remains of an invoice as its hosted page does (``{"card", "method", "iban", "name", "expiry",
    "cvc"}``); 402 with Stripe's decline error when the card is declined."""
    return jsonify(_render(pay_invoice(_state(), invoice_id, attempt_from_json(_body()))))


@bp.post("/invoices/<invoice_id>/settle")
def settle_hosted_invoice(invoice_id: str) -> Response:
    """Settle the SEPA debit submitted on an invoice's page with ``{"outcome": "succeeded"|"failed"}``."""
    return jsonify(_render(settle_invoice_debit(_state(), invoice_id, _body().get("outcome"))))


@bp.post("/charges/<charge_id>/refund")
def dashboard_refund(charge_id: str) -> Response:
    """A refund made "from the dashboard": ``{"amount": N}`` (everything left when omitted)."""
    state = _state()
    body = _body()
    amount = body.get("amount")
    if amount is not None and (not isinstance(amount, int) or amount < 1):
        raise invalid_param("amount", "amount must be a positive integer.")
    charge = state.require(charge_id, "charge")
    refund = create_refund(state, charge, amount, body.get("reason") or "requested_by_customer",
                           body.get("metadata") or {})
    return jsonify(_render(refund))


@bp.post("/charges/<charge_id>/dispute")
def dispute(charge_id: str) -> Response:
    """Open a dispute on a charge."""
    state = _state()
    charge = state.require(charge_id, "charge")
    return jsonify(_render(open_dispute(state, charge, _body().get("reason") or "fraudulent")))


@bp.post("/disputes/<dispute_id>/close")
def close(dispute_id: str) -> Response:
    """Close a dispute with ``{"outcome": "won"|"lost"}``."""
    return jsonify(_render(close_dispute(_state(), dispute_id, _body().get("outcome"))))


@bp.post("/refunds/<refund_id>/fail")
def fail(refund_id: str) -> Response:
    """Make a refund fail with ``{"reason": ...}``."""
    reason = _body().get("reason") or "expired_or_canceled_card"
    return jsonify(_render(fail_refund(_state(), refund_id, reason)))


@bp.post("/clock/advance")
def advance() -> Response:
    """Move the sandbox clock forward ``{"seconds": N}``; expires sessions and runs due work."""
    seconds = _body().get("seconds")
    if not isinstance(seconds, (int, float)) or seconds < 0:
        raise invalid_param("seconds", "seconds must be a non-negative number.")
    state = _state()
    state.advance_clock(seconds)
    return jsonify({"now": state.now()})


@bp.post("/events/<event_id>/resend")
def resend(event_id: str) -> Response:
    """Deliver an event once more (a duplicate delivery)."""
    state = _state()
    event = state.require(event_id, "event")
    state.resend(event)
    return jsonify({"event": event_id, "queued": state.deliverer.enabled})


@bp.get("/deliveries")
def deliveries() -> Response:
    """Every webhook delivery attempt so far."""
    return jsonify([
        {"event_id": a.event_id, "event_type": a.event_type, "attempt": a.attempt,
         "status_code": a.status_code, "error": a.error, "at": a.at}
        for a in _state().deliveries
    ])


@bp.post("/faults")
def add_fault() -> Response:
    """Arm a fault for the next matching API calls."""
    state = _state()
    state.faults.add(fault_from_json(_body()))
    return jsonify({"faults": [f.to_dict() for f in state.faults.list()]})


@bp.get("/faults")
def list_faults() -> Response:
    """The faults still armed."""
    return jsonify({"faults": [f.to_dict() for f in _state().faults.list()]})


@bp.delete("/faults")
def clear_faults() -> Response:
    """Disarm every fault."""
    _state().faults.clear()
    return jsonify({"faults": []})
