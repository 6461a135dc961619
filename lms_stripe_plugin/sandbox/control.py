"""Sandbox-only control endpoints under ``/_sandbox`` (JSON, no authentication)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from . import connect
from .errors import invalid_param
from .bank_accounts import read_iban
from .faults import fault_from_json
from .invoice_paying import pay_invoice, settle_invoice_debit
from .onboarding import ACTIVITIES
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


@bp.before_request
def _act_as_owner() -> None:
    """An endpoint about an object acts as the account that owns it (what it creates belongs to that account)."""
    for value in (request.view_args or {}).values():
        scope = connect.scope_of(_state(), value)
        if scope is not connect.EVERY_ACCOUNT:
            g.control_scope = _state().enter_account(scope)  # type: ignore[arg-type]
            return


@bp.teardown_request
def _leave_scope(_exc: BaseException | None) -> None:
    scope = g.pop("control_scope", None)
    if scope is not None:
        _state().leave_account(scope)


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
                    "pending_deliveries": state.pending_deliveries(), "faults": len(state.faults.list())})


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
    "business_address": ["line", ...]}`` sets them (the public details of the Dashboard's Business settings).
    With ``"account": "acct_..."`` (or ``?account=``), a connected account's (its name is its business profile's)."""
    state = _state()
    body = _body()
    connected = body.get("account") or request.args.get("account")
    if connected:
        return _connected_account_details(state, str(connected), body)
    if request.method == "POST" and "terms_of_service_url" in body:
        state.config.terms_of_service_url = _terms_url(body)
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


def _terms_url(body: dict[str, Any]) -> str | None:
    url = body["terms_of_service_url"]
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise invalid_param("terms_of_service_url", "terms_of_service_url must be an http(s) URL or null.")
    return url


def _connected_account_details(state: Any, account_id: str, body: dict[str, Any]) -> Response:
    account = connect.connected_account(state, account_id)
    if account is None:
        raise invalid_param("account", f"No such connected account: '{account_id}'.")
    public = connect.facts(state, account_id).public
    if request.method == "POST" and "terms_of_service_url" in body:
        public["terms_of_service_url"] = _terms_url(body)
    if request.method == "POST" and "business_address" in body:
        lines = body["business_address"]
        if not isinstance(lines, list) or len(lines) > 5 or not all(isinstance(x, str) and len(x) <= 200 for x in lines):
            raise invalid_param("business_address", "business_address must be a list of at most 5 lines.")
        public["business_address"] = [line.strip() for line in lines if line.strip()]
    with state.acting_as(account_id):
        details = connect.public_details(state)
    return jsonify({"account": account_id, "terms_of_service_url": details.terms_of_service_url,
                    "business_name": details.name, "business_address": list(details.address)})


# -- connected accounts ------------------------------------------------------------------------------


@bp.post("/accounts/<account_id>/onboarding")
def complete_onboarding(account_id: str) -> Response:
    """Fill in and submit the hosted onboarding as a browser does (``onboarding.py``): ``{"company_name",
    "activity" (an MCC of the form), "description", "iban"}``, each with a working default; the submitted
    details are then verified (``verification``)."""
    body = _body()
    state = _state()
    with state.lock:
        account = connect.connected_account(state, account_id)
        if account is None:
            raise invalid_param("account", f"No such connected account: '{account_id}'.")
        if account["details_submitted"]:
            raise invalid_param("account", f"The account {account_id} has submitted its details already.")
        company = str(body.get("company_name") or "Sandbox School")
        mcc = str(body.get("activity") or "8299")
        if mcc not in dict(ACTIVITIES):
            raise invalid_param("activity", f"activity must be one of {', '.join(dict(ACTIVITIES))}.")
        connect.save_business(state, account, company=company, mcc=mcc, iban=read_iban(body.get("iban") or SEPA_SUCCEEDS),
                              description=str(body.get("description") or "Training courses"))
        connect.submit_details(state, account, ip=request.remote_addr or "127.0.0.1", user_agent="sandbox-control")
        return jsonify(_render(account))


@bp.post("/accounts/<account_id>/verification")
def verification(account_id: str) -> Response:
    """What Stripe's verification of a connected account says: ``{"outcome": "verified" | "documents_required" |
    "pending"}``; at once when its submitted details are being (or were) verified, else at its next
    verification (see ``connect.py``)."""
    outcome = _body().get("outcome")
    return jsonify(_render(connect.plan_verification(_state(), account_id, str(outcome))))


@bp.post("/accounts/<account_id>/disable")
def disable(account_id: str) -> Response:
    """Stripe disables a connected account's charges: ``{"reason": "rejected.fraud" | "under_review" | ...}``
    (a ``requirements.disabled_reason``; default ``under_review``)."""
    reason = _body().get("reason") or "under_review"
    return jsonify(_render(connect.disable_charges(_state(), account_id, str(reason))))


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
    deliverer = state.connect_deliverer if event.get("account") else state.deliverer
    return jsonify({"event": event_id, "queued": deliverer.enabled})


@bp.get("/deliveries")
def deliveries() -> Response:
    """Every webhook delivery attempt so far."""
    return jsonify([
        {"event_id": a.event_id, "event_type": a.event_type, "attempt": a.attempt,
         "status_code": a.status_code, "error": a.error, "at": a.at, "endpoint": a.endpoint}
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
