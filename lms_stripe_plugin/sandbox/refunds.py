"""Refunds (API, credit notes, "dashboard") and disputes on charges."""

from __future__ import annotations

from typing import Any

from .amounts import check_step, format_amount
from .errors import StripeError, invalid_param
from .ids import new_id
from .listing import list_envelope
from .params import Params
from .state import SandboxState, locked

REFUND_PARAMS = {
    "amount", "charge", "currency", "customer", "instructions_email", "metadata", "origin", "payment_intent",
    "reason", "refund_application_fee", "reverse_transfer",
}
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FAILURE_REASONS = (
    "charge_for_pending_refund_disputed", "declined", "expired_or_canceled_card", "insufficient_funds",
    "lost_or_stolen_card", "merchant_request", "unknown",
)
_ACTIVE = ("pending", "requires_action", "succeeded")


# -- refunds ------------------------------------------------------------------------------


@locked
def create_refund_from_params(state: SandboxState, params: Params) -> dict[str, Any]:
    """``POST /v1/refunds`` with ``payment_intent`` or ``charge``."""
    params.reject_unimplemented(REFUND_PARAMS)
    charge = _target_charge(state, params)
    amount = params.integer("amount", minimum=1)
    reason = params.string("reason", choices=REFUND_REASONS)
    return create_refund(state, charge, amount, reason, params.metadata())


def _target_charge(state: SandboxState, params: Params) -> dict[str, Any]:
    charge_id, intent_id = params.string("charge"), params.string("payment_intent")
    if not charge_id and not intent_id:
        raise StripeError("One of the following params should be provided for this request: payment_intent or charge.",
                          code="parameter_missing", param="payment_intent")
    charge = state.require(charge_id, "charge", param="charge", status=400) if charge_id else None
    if intent_id:
        intent = state.require(intent_id, "payment_intent", param="payment_intent", status=400)
        from_intent = state.get(intent["latest_charge"], "charge")
        if from_intent is None or from_intent["status"] != "succeeded":
            raise invalid_param("payment_intent", f"This PaymentIntent ({intent_id}) does not have a successful "
                                                  "charge to refund.", code="charge_not_refundable")
        if charge is not None and charge["id"] != from_intent["id"]:
            raise invalid_param("charge", "The charge does not belong to the given PaymentIntent.")
        charge = from_intent
    return charge


def check_refundable(state: SandboxState, charge: dict[str, Any], amount: int | None, param: str = "amount") -> int:
    """The amount to refund (all that is left when None), or the error Stripe gives."""
    if charge["status"] != "succeeded" and not _unsettled_debit(charge):
        raise invalid_param(None, f"Charge {charge['id']} has not succeeded and cannot be refunded.",
                            code="charge_not_refundable")
    dispute = _open_dispute_of(state, charge)
    if dispute is not None:
        raise invalid_param(None, f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                            code="charge_disputed")
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid_param(None, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
    if amount is None:
        return remaining
    check_step(amount, charge["currency"], param)
    if amount > remaining:
        raise invalid_param(param, (
            f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than unrefunded amount on "
            f"charge ({format_amount(remaining, charge['currency'])})"), code="amount_too_large")
    return amount


def _unsettled_debit(charge: dict[str, Any]) -> bool:
    return charge["status"] == "pending" and charge["payment_method_details"]["type"] == "sepa_debit"


@locked
def create_refund(state: SandboxState, charge: dict[str, Any], amount: int | None, reason: str | None = None,
                  metadata: dict[str, str] | None = None, param: str = "amount") -> dict[str, Any]:
    """Refund part or all of a charge, firing ``refund.created``, ``charge.refunded``, ``charge.refund.updated``.

    Stripe's test cards (docs.stripe.com/testing#refunds) decide what happens next:
    4000 0000 0000 7726 refunds start ``pending`` and succeed later; 4000 0000 0000 5126
    refunds start ``succeeded`` and fail later (``refund.failed``). A refund of a SEPA debit
    that has not settled stays ``pending`` (``pending_reason: charge_pending``) until it does.
    """
    amount = check_refundable(state, charge, amount, param)
    behaviour = state.private[charge["id"]].get("refunds", "succeed")
    status, pending_reason = _initial_status(charge, behaviour)
    refund = _refund_object(state, charge, amount, reason, metadata or {}, status)
    refund["pending_reason"] = pending_reason
    state.add(refund)
    previous = sync_charge(state, charge)
    state.emit("refund.created", refund)
    state.emit("charge.refunded", charge, previous)
    state.emit("charge.refund.updated", refund)
    _schedule_outcome(state, refund["id"], behaviour if pending_reason != "charge_pending" else "succeed")
    return refund


def _initial_status(charge: dict[str, Any], behaviour: str) -> tuple[str, str | None]:
    if _unsettled_debit(charge):
        return "pending", "charge_pending"
    if behaviour == "pending_then_succeed":
        return "pending", "processing"
    return "succeeded", None


def _schedule_outcome(state: SandboxState, refund_id: str, behaviour: str) -> None:
    delay = state.config.refund_failure_seconds
    if behaviour == "succeed_then_fail":
        state.schedule(delay, lambda: _quietly(fail_refund, state, refund_id, "expired_or_canceled_card"))
    elif behaviour == "pending_then_succeed":
        state.schedule(delay, lambda: _quietly(succeed_refund, state, refund_id))


def _refund_object(state: SandboxState, charge: dict[str, Any], amount: int, reason: str | None,
                   metadata: dict[str, str], status: str) -> dict[str, Any]:
    method = charge["payment_method_details"]["type"]
    destination = {"reference": None, "reference_status": "pending", "reference_type": "acquirer_reference_number",
                   "type": "refund"} if method == "card" else {}
    return {
        "id": new_id("re"), "object": "refund", "amount": amount, "balance_transaction": new_id("txn"),
        "charge": charge["id"], "created": state.now(), "currency": charge["currency"],
        "customer": charge["customer"], "customer_account": None, "description": None,
        "destination_details": {method: destination, "type": method}, "failure_balance_transaction": None,
        "failure_reason": None, "instructions_email": None, "metadata": metadata, "next_action": None,
        "payment_intent": charge["payment_intent"], "payment_method": charge["payment_method"],
        "pending_reason": None, "presentment_details": None, "reason": reason, "receipt_number": None,
        "source_transfer_reversal": None, "status": status, "transfer_reversal": None,
    }


def sync_charge(state: SandboxState, charge: dict[str, Any]) -> dict[str, Any]:
    """Recompute a charge's refund fields; returns their previous values."""
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    refunds = [r for r in state.all("refund") if r["charge"] == charge["id"]]
    charge["amount_refunded"] = sum(r["amount"] for r in refunds if r["status"] in _ACTIVE)
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    charge["refunds"] = {**list_envelope([state.render(r) for r in refunds], f"/v1/charges/{charge['id']}/refunds"),
                         "total_count": len(refunds)}
    return previous


@locked
def fail_refund(state: SandboxState, refund_id: str, reason: str = "expired_or_canceled_card") -> dict[str, Any]:
    """Make a pending or succeeded refund fail (the money goes back to the merchant's balance)."""
    refund = state.require(refund_id, "refund")
    if reason not in FAILURE_REASONS:
        raise invalid_param("reason", f"reason must be one of {', '.join(FAILURE_REASONS)}.")
    if refund["status"] not in ("pending", "succeeded"):
        raise invalid_param(None, f"Refund {refund_id} is {refund['status']}; only pending or succeeded refunds can fail.")
    previous = {"status": refund["status"], "failure_reason": None}
    refund.update(status="failed", failure_reason=reason, failure_balance_transaction=new_id("txn"))
    charge = state.require(refund["charge"], "charge")
    sync_charge(state, charge)
    state.emit("refund.updated", refund, previous)
    state.emit("refund.failed", refund)
    state.emit("charge.refund.updated", refund, previous)
    return refund


@locked
def succeed_refund(state: SandboxState, refund_id: str) -> dict[str, Any]:
    """A pending refund goes through (``refund.updated``, ``charge.refund.updated``)."""
    refund = state.require(refund_id, "refund")
    if refund["status"] != "pending":
        raise invalid_param(None, f"Refund {refund_id} is {refund['status']}; only pending refunds can succeed.")
    previous = {"status": "pending", "pending_reason": refund["pending_reason"]}
    refund.update(status="succeeded", pending_reason=None)
    sync_charge(state, state.require(refund["charge"], "charge"))
    state.emit("refund.updated", refund, previous)
    state.emit("charge.refund.updated", refund, previous)
    return refund


@locked
def settle_pending_refunds(state: SandboxState, charge: dict[str, Any], *, succeeded: bool) -> None:
    """Refunds waiting for a debit to settle go through with it, or are canceled when it fails.

    Stripe's docs do not say what becomes of such a refund when the debit fails; there is
    nothing left to return, and ``canceled`` is the refund status for that.
    """
    for refund in state.all("refund"):
        if refund["charge"] != charge["id"] or refund["pending_reason"] != "charge_pending":
            continue
        if succeeded:
            succeed_refund(state, refund["id"])
            continue
        previous = {"status": "pending", "pending_reason": "charge_pending"}
        refund.update(status="canceled", pending_reason=None)
        sync_charge(state, charge)
        state.emit("refund.updated", refund, previous)
        state.emit("charge.refund.updated", refund, previous)


def _quietly(operation: Any, state: SandboxState, refund_id: str, *args: Any) -> None:
    """Scheduled change of a refund: skipped when a test already changed it or reset the sandbox."""
    try:
        operation(state, refund_id, *args)
    except StripeError:
        pass


# -- disputes ---------------------------------------------------------------------------------


def _open_dispute_of(state: SandboxState, charge: dict[str, Any]) -> dict[str, Any] | None:
    for dispute in state.all("dispute"):
        if dispute["charge"] == charge["id"] and dispute["status"] not in ("won", "lost", "prevented"):
            return dispute
    return None


@locked
def open_dispute(state: SandboxState, charge: dict[str, Any], reason: str = "fraudulent") -> dict[str, Any]:
    """Open a dispute on a succeeded charge (``charge.dispute.created``)."""
    if charge["status"] != "succeeded":
        raise invalid_param(None, f"Charge {charge['id']} has not succeeded and cannot be disputed.")
    if any(d["charge"] == charge["id"] for d in state.all("dispute")):
        raise invalid_param(None, f"Charge {charge['id']} has already been disputed.", code="charge_disputed")
    dispute = _dispute_object(state, charge, reason)
    state.add(dispute)
    charge["disputed"] = True
    state.emit("charge.dispute.created", dispute)
    # A card dispute takes the disputed amount (and the fee) from the balance at once.
    dispute["balance_transactions"] = [new_id("txn")]
    state.emit("charge.dispute.funds_withdrawn", dispute)
    return dispute


def _dispute_object(state: SandboxState, charge: dict[str, Any], reason: str) -> dict[str, Any]:
    details = charge["payment_method_details"]
    card = details.get("card") or {}
    return {
        "id": new_id("dp"), "object": "dispute", "amount": charge["amount"] - charge["amount_refunded"],
        "balance_transactions": [], "charge": charge["id"], "created": state.now(), "currency": charge["currency"],
        "enhanced_eligibility_types": [], "evidence": _empty_evidence(),
        "evidence_details": {"due_by": state.now() + 7 * 24 * 3600, "enhanced_eligibility": {}, "has_evidence": False,
                             "past_due": False, "submission_count": 0},
        "is_charge_refundable": False, "livemode": False, "metadata": {}, "network_reason_code": "10.4",
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {"card": {"brand": card.get("brand"), "case_type": "chargeback",
                                            "network_reason_code": "10.4"} if card else None,
                                   "type": details["type"]},
        "reason": reason, "status": "needs_response",
    }


def _empty_evidence() -> dict[str, Any]:
    keys = (
        "access_activity_log", "billing_address", "cancellation_policy", "cancellation_policy_disclosure",
        "cancellation_rebuttal", "customer_communication", "customer_email_address", "customer_name",
        "customer_purchase_ip", "customer_signature", "duplicate_charge_documentation",
        "duplicate_charge_explanation", "duplicate_charge_id", "product_description", "receipt", "refund_policy",
        "refund_policy_disclosure", "refund_refusal_explanation", "service_date", "service_documentation",
        "shipping_address", "shipping_carrier", "shipping_date", "shipping_documentation",
        "shipping_tracking_number", "uncategorized_file", "uncategorized_text",
    )
    return {**{key: None for key in keys}, "enhanced_evidence": {}}


DISPUTE_UPDATE_PARAMS = {"evidence", "metadata", "submit"}


@locked
def update_dispute(state: SandboxState, dispute_id: str, params: Params) -> dict[str, Any]:
    """``POST /v1/disputes/{id}``: add evidence; ``submit=true`` sends it and the dispute goes under review."""
    params.reject_unimplemented(DISPUTE_UPDATE_PARAMS)
    dispute = state.require(dispute_id, "dispute")
    if dispute["status"] not in ("needs_response", "warning_needs_response"):
        raise invalid_param(None, f"This dispute is {dispute['status']} and can no longer be updated.")
    previous = {"evidence": dict(dispute["evidence"]), "status": dispute["status"],
                "evidence_details": dict(dispute["evidence_details"]), "metadata": dict(dispute["metadata"])}
    evidence = params.sub("evidence")
    evidence.reject_unimplemented(key for key in dispute["evidence"] if key != "enhanced_evidence")
    dispute["evidence"].update({key: evidence.string(key) for key in evidence.data})
    dispute["metadata"] = {**dispute["metadata"], **params.metadata()}
    dispute["evidence_details"]["has_evidence"] = any(v for k, v in dispute["evidence"].items() if k != "enhanced_evidence")
    if params.boolean("submit", default=False):
        dispute["status"] = "under_review"
        dispute["evidence_details"]["submission_count"] += 1
    state.emit("charge.dispute.updated", dispute, _changed(previous, dispute))
    return dispute


def _changed(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in previous.items() if current[key] != value}


@locked
def close_dispute(state: SandboxState, dispute_id: str, outcome: str) -> dict[str, Any]:
    """Close an open dispute as ``won`` or ``lost`` (``charge.dispute.closed``).

    A won dispute gives the funds back (``charge.dispute.funds_reinstated``). ``POST
    /v1/disputes/{id}/close`` is the merchant accepting the loss.
    """
    dispute = state.require(dispute_id, "dispute")
    if outcome not in ("won", "lost"):
        raise invalid_param("outcome", "outcome must be `won` or `lost`.")
    if dispute["status"] in ("won", "lost"):
        raise invalid_param(None, f"Dispute {dispute_id} is already closed ({dispute['status']}).")
    previous = {"status": dispute["status"]}
    dispute["status"] = outcome
    dispute["is_charge_refundable"] = False
    state.emit("charge.dispute.closed", dispute, previous)
    if outcome == "won":
        dispute["balance_transactions"].append(new_id("txn"))
        state.emit("charge.dispute.funds_reinstated", dispute)
    return dispute
