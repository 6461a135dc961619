"""Paying a Checkout Session: Stripe's test cards, Klarna, SEPA Direct Debit and settlement."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from .bank_accounts import read_iban as checked_iban
from .billing import create_session_invoice
from .checkout import apply_promotion_code, checked_session, set_tax_location
from .connect import collect_application_fee, platform_application, require_charges_enabled
from .errors import StripeError, card_error, invalid_param
from .ids import new_id, random_string
from .refunds import open_dispute, settle_pending_refunds
from .invoice_payments import intent_ended_unpaid, intent_succeeded
from .resources import NULL_ADDRESS, customer_object, fingerprint, payment_intent_object, valid_email
from .state import SandboxState, locked
from .taxes import KLARNA_CURRENCY_BY_COUNTRY, customer_country


@dataclass(frozen=True)
class TestCard:
    """How one of Stripe's test card numbers behaves."""

    brand: str
    funding: str = "credit"
    country: str = "US"
    decline: tuple[str, str | None, str] | None = None  # (code, decline_code, message)
    dispute: bool = False
    refunds: str = "succeed"  # or "pending_then_succeed", "succeed_then_fail" (see refunds.py)


def _declined(code: str, decline_code: str | None, message: str) -> TestCard:
    return TestCard("visa", decline=(code, decline_code, message))


TEST_CARDS = {
    "4242424242424242": TestCard("visa"),
    "4000056655665556": TestCard("visa", funding="debit"),
    "4000002760003184": TestCard("visa", country="DE"),
    "5555555555554444": TestCard("mastercard"),
    "378282246310005": TestCard("amex"),
    "4000000000000002": _declined("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": _declined("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": _declined("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": _declined("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": _declined("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": _declined("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "4000000000000119": _declined("processing_error", "processing_error",
                                  "An error occurred while processing your card. Try again in a little bit."),
    "4000000000000259": TestCard("visa", dispute=True),
    "4000000000007726": TestCard("visa", refunds="pending_then_succeed"),
    "4000000000005126": TestCard("visa", refunds="succeed_then_fail"),
}
LIVE_CARD = _declined(
    "card_declined", "test_mode_live_card",
    "Your card was declined. Your request was in test mode, but used a non test (live) card. "
    "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
)
SEPA_SUCCEEDS = "DE89370400440532013000"
# Stripe's test IBANs whose debit fails at settlement.
SEPA_FAILING_IBANS = {"DE62370400440532013001", "AT861904300235473202", "FR8420041010050500013M02607"}


@dataclass
class PaymentAttempt:
    """What the learner submitted on the hosted page (or a test sent to the control endpoint)."""

    method: str = "card"
    card_number: str = ""
    card_expiry: str = ""
    card_cvc: str = ""
    iban: str = ""
    email: str | None = None
    name: str | None = None
    promotion_code: str | None = None
    terms_accepted: bool = False
    country: str | None = None  # of the billing address entered on the page
    wallet: str | None = None  # "apple_pay" or "google_pay": a wallet button; the wallet hands over a card


@dataclass
class Payment:
    """A validated payment method, ready to be charged."""

    method: str
    details: dict[str, Any]
    card: TestCard | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- paying ---------------------------------------------------------------------------


@locked
def pay_session(state: SandboxState, session_id: str, attempt: PaymentAttempt) -> dict[str, Any]:
    """Submit payment for an open session; returns the session or raises the error to show."""
    session = checked_session(state, session_id)
    _check_payable(session, attempt)
    require_charges_enabled(state)  # the session's account (the page acts as its owner) may have lost them
    email = _payer_email(state, session, attempt)
    if attempt.promotion_code and attempt.promotion_code.strip():
        apply_promotion_code(state, session, attempt.promotion_code)
    _locate(state, session, attempt)
    if session["amount_total"] == 0:
        return _complete_free(state, session, email, attempt)
    if attempt.method == "sepa_debit":
        return _start_debit(state, session, email, attempt, read_iban(state, attempt.iban))
    if attempt.wallet:
        payment = _read_wallet(state, session, attempt)
    else:
        payment = read_card(state, attempt) if attempt.method == "card" else _klarna(state, session, attempt)
    if payment.card is not None and payment.card.decline:
        _record_decline(state, session, email, attempt, payment)
        code, decline_code, message = payment.card.decline
        raise card_error(message, code, decline_code, payment_intent=session["payment_intent"])
    return _complete_now(state, session, email, attempt, payment)


def _check_payable(session: dict[str, Any], attempt: PaymentAttempt) -> None:
    if session["status"] == "expired":
        raise StripeError("This checkout session has expired.", code="checkout_session_expired")
    if session["status"] != "open":
        raise StripeError("This checkout session is already complete.", code="checkout_session_complete")
    if attempt.method not in session["payment_method_types"]:
        raise invalid_param("method", f"The payment method `{attempt.method}` is not offered by this checkout session.")
    consent = session["consent_collection"] or {}
    if consent.get("terms_of_service") == "required" and not attempt.terms_accepted:
        raise invalid_param("terms", "You must accept the terms of service to continue.", code="terms_not_accepted")


def _payer_email(state: SandboxState, session: dict[str, Any], attempt: PaymentAttempt) -> str:
    customer = state.get(session["customer"], "customer")
    email = (customer or {}).get("email") or session["customer_email"] or (attempt.email or "").strip()
    if not email:
        raise invalid_param("email", "Your email is incomplete.", code="email_invalid")
    if not valid_email(email):
        raise invalid_param("email", "Your email address is invalid.", code="email_invalid")
    return email


def success_redirect(state: SandboxState, session: dict[str, Any]) -> str:
    """Where the learner's browser goes after paying: ``success_url`` with the session id filled in."""
    url = session["success_url"]
    if not url:
        return f"{state.private[session['id']]['base_url']}/c/complete/{session['id']}"
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"])


# -- payment methods ------------------------------------------------------------------------


def read_card(state: SandboxState, attempt: PaymentAttempt) -> Payment:
    number = re.sub(r"[\s-]", "", attempt.card_number or "")
    if not number:
        raise card_error("Your card number is incomplete.", "incomplete_number", param="card_number")
    if not number.isdigit() or not 13 <= len(number) <= 19 or not _luhn_ok(number):
        raise card_error("Your card number is invalid.", "invalid_number", param="card_number")
    month, year = _read_expiry(state, attempt.card_expiry)
    card = TEST_CARDS.get(number, LIVE_CARD)
    cvc = (attempt.card_cvc or "").strip()
    if not cvc.isdigit() or len(cvc) != (4 if card.brand == "amex" else 3):
        raise card_error("Your card's security code is incomplete.", "incomplete_cvc", param="card_cvc")
    details = {"card": _card_details(card, number, month, year), "type": "card"}
    return Payment("card", details, card)


def _read_wallet(state: SandboxState, session: dict[str, Any], attempt: PaymentAttempt) -> Payment:
    """Apple Pay or Google Pay: a card payment whose card the wallet hands over (4242 4242 4242 4242 unless
    the attempt names another test card, a declined one say); ``card.wallet`` says which wallet."""
    if attempt.wallet not in state.private[session["id"]].get("wallets", []):
        raise invalid_param("wallet", f"The wallet `{attempt.wallet}` is not offered by this checkout session.")
    number = re.sub(r"[\s-]", "", attempt.card_number or "") or "4242424242424242"
    card = TEST_CARDS.get(number, LIVE_CARD)
    year = dt.datetime.fromtimestamp(state.now(), dt.timezone.utc).year + 3
    details = _card_details(card, number, 12, year)
    details["checks"]["cvc_check"] = None  # a wallet sends a cryptogram, not a CVC
    details["wallet"] = {attempt.wallet: {}, "dynamic_last4": number[-4:], "type": attempt.wallet}
    return Payment("card", {"card": details, "type": "card"}, card)


def _luhn_ok(number: str) -> bool:
    total = 0
    for index, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _read_expiry(state: SandboxState, text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,2})\s*/?\s*(\d{2}|\d{4})\s*", text or "")
    if not match:
        raise card_error("Your card's expiration date is incomplete.", "incomplete_expiry", param="card_expiry")
    month, year = int(match.group(1)), int(match.group(2))
    year = year + 2000 if year < 100 else year
    if not 1 <= month <= 12:
        raise card_error("Your card's expiration month is invalid.", "invalid_expiry_month", param="card_expiry")
    today = dt.datetime.fromtimestamp(state.now(), dt.timezone.utc)
    if (year, month) < (today.year, today.month):
        raise card_error("Your card's expiration year is in the past.", "invalid_expiry_year", param="card_expiry")
    return month, year


def _card_details(card: TestCard, number: str, month: int, year: int) -> dict[str, Any]:
    return {
        "amount_authorized": None, "authorization_code": random_string(6, "0123456789"), "brand": card.brand,
        "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
        "country": card.country, "exp_month": month, "exp_year": year,
        "extended_authorization": {"status": "disabled"}, "fingerprint": fingerprint(), "funding": card.funding,
        "incremental_authorization": {"status": "unavailable"}, "installments": None, "last4": number[-4:],
        "mandate": None, "multicapture": {"status": "unavailable"}, "network": card.brand,
        "network_token": {"used": False}, "network_transaction_id": random_string(15, "0123456789"),
        "overcapture": {"maximum_amount_capturable": 0, "status": "unavailable"},
        "regulated_status": "unregulated", "three_d_secure": None, "wallet": None,
    }


def _locate(state: SandboxState, session: dict[str, Any], attempt: PaymentAttempt) -> None:
    if session["automatic_tax"]["status"] != "requires_location_inputs":
        return
    country = (attempt.country or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise invalid_param("billing_country", "Your country is required to calculate tax.",
                            code="customer_tax_location_invalid")
    set_tax_location(state, session, country)


def _klarna(state: SandboxState, session: dict[str, Any], attempt: PaymentAttempt) -> Payment:
    customer = state.get(session["customer"], "customer")
    country = (attempt.country or "").strip().upper() or customer_country(customer) or "DE"
    if KLARNA_CURRENCY_BY_COUNTRY.get(country) != session["currency"]:
        raise invalid_param("method", f"Klarna is not available to customers in {country} paying in "
                                      f"{session['currency'].upper()}.", code="payment_method_unavailable")
    details = {"klarna": {"payer_details": {"address": {"country": country}},
                          "payment_method_category": "pay_in_installments", "preferred_locale": "en-DE"},
               "type": "klarna"}
    return Payment("klarna", details)


def read_iban(state: SandboxState, text: str) -> Payment:
    iban = checked_iban(text)
    details = {"sepa_debit": {"bank_code": iban[4:12], "branch_code": "", "country": iban[:2],
                              "fingerprint": fingerprint(), "generated_from": None, "last4": iban[-4:],
                              "mandate": new_id("mandate")},
               "type": "sepa_debit"}
    return Payment("sepa_debit", details, extra={"fails": iban in SEPA_FAILING_IBANS})


# -- objects: customer, payment intent, charge ---------------------------------------------------


def _ensure_customer(state: SandboxState, session: dict[str, Any], email: str,
                     name: str | None) -> dict[str, Any] | None:
    existing = state.get(session["customer"], "customer")
    if existing is not None:
        return existing
    if session["customer_creation"] != "always":
        # In payment mode Checkout creates a Customer only with customer_creation=always (the SDK's
        # Session.customer); otherwise the payer stays a guest, known by the session's customer_details.
        return None
    customer = state.add(customer_object(state, email=email, name=name or None))
    session["customer"] = customer["id"]
    state.emit("customer.created", customer)
    return customer


def _ensure_intent(state: SandboxState, session: dict[str, Any], payment: Payment | None) -> dict[str, Any]:
    intent = state.get(session["payment_intent"], "payment_intent")
    if intent is None:
        # Checkout creates the PaymentIntent when the customer submits the page, not with the session.
        intent = state.add(_intent_object(state, session))
        session["payment_intent"] = intent["id"]
        state.emit("payment_intent.created", intent)
    intent.update(amount=session["amount_total"], customer=session["customer"])
    if payment is not None:
        intent["payment_method"] = new_id("pm")
        intent["payment_method_types"] = [payment.method]
    return intent


def _intent_object(state: SandboxState, session: dict[str, Any]) -> dict[str, Any]:
    data = state.private[session["id"]]["payment_intent_data"]
    return payment_intent_object(
        state, amount=session["amount_total"], currency=session["currency"], customer=session["customer"],
        payment_method_types=session["payment_method_types"], description=data["description"],
        metadata=data["metadata"], receipt_email=data["receipt_email"], setup_future_usage=data["setup_future_usage"],
        statement_descriptor=data["statement_descriptor"],
        statement_descriptor_suffix=data["statement_descriptor_suffix"],
        application_fee_amount=data["application_fee_amount"], application=platform_application(state),
    )


def _new_charge(state: SandboxState, session: dict[str, Any], intent: dict[str, Any], payment: Payment,
                billing: tuple[str | None, str | None]) -> dict[str, Any]:
    return new_charge(state, intent, payment, billing, base_url=state.private[session["id"]]["base_url"],
                      origin={"session": session["id"]})


def new_charge(state: SandboxState, intent: dict[str, Any], payment: Payment, billing: tuple[str | None, str | None],
               *, base_url: str, origin: dict[str, str]) -> dict[str, Any]:
    """A pending charge of ``intent`` paid with ``payment``, made on the page of ``origin`` (a Checkout Session,
    an invoice), now the PaymentIntent's ``latest_charge``."""
    charge_id = new_id("ch")
    charge = {
        "id": charge_id, "object": "charge", "amount": intent["amount"], "amount_captured": 0,
        "amount_refunded": 0, "application": intent["application"], "application_fee": None,
        "application_fee_amount": intent["application_fee_amount"],
        "balance_transaction": None,
        "billing_details": {"address": dict(NULL_ADDRESS), "email": billing[0], "name": billing[1],
                            "phone": None, "tax_id": None},
        "calculated_statement_descriptor": "STRIPE SANDBOX", "captured": False, "created": state.now(),
        "currency": intent["currency"], "customer": intent["customer"], "description": intent["description"],
        "disputed": False, "failure_balance_transaction": None, "failure_code": None, "failure_message": None,
        "fraud_details": {}, "livemode": False, "metadata": dict(intent["metadata"]), "on_behalf_of": None,
        "outcome": None, "paid": False, "payment_intent": intent["id"], "payment_method": intent["payment_method"],
        "payment_method_details": payment.details, "presentment_details": None, "radar_options": {},
        "receipt_email": intent["receipt_email"], "receipt_number": None,
        "receipt_url": f"{base_url}/receipts/{charge_id}", "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{charge_id}/refunds"},
        "review": None, "shipping": None, "source": None, "source_transfer": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": "pending", "transfer_data": None, "transfer_group": None,
    }
    refunds = payment.card.refunds if payment.card else "succeed"
    state.add(charge, {"refunds": refunds, "base_url": base_url, **origin})
    intent["latest_charge"] = charge_id
    return charge


def mark_succeeded(state: SandboxState, intent: dict[str, Any], charge: dict[str, Any]) -> None:
    charge.update(status="succeeded", paid=True, captured=True, amount_captured=charge["amount"],
                  outcome={"advice_code": None, "network_advice_code": None, "network_decline_code": None,
                           "network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                           "risk_score": 20, "seller_message": "Payment complete.", "type": "authorized"})
    intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None, processing=None)
    collect_application_fee(state, charge)
    state.emit("payment_intent.succeeded", intent)
    state.emit("charge.succeeded", charge)
    # A PaymentIntent attached to an invoice before it succeeded is credited now (attach_payment).
    intent_succeeded(state, intent)


def settle_balance(state: SandboxState, charge: dict[str, Any]) -> None:
    """The balance transaction comes after the charge succeeded, announced by ``charge.updated``."""
    charge["balance_transaction"] = new_id("txn")
    state.emit("charge.updated", charge, {"balance_transaction": None})


def mark_failed(state: SandboxState, intent: dict[str, Any], charge: dict[str, Any],
                 failure: tuple[str, str | None, str], error_type: str) -> None:
    code, decline_code, message = failure
    charge.update(status="failed", paid=False, failure_code=code, failure_message=message,
                  outcome={"advice_code": None, "network_advice_code": None, "network_decline_code": None,
                           "network_status": "declined_by_network", "reason": decline_code, "risk_level": "normal",
                           "risk_score": 20, "type": "issuer_declined",
                           "seller_message": "The bank did not return any further details with this decline."})
    intent.update(status="requires_payment_method", processing=None, last_payment_error={
        "charge": charge["id"], "code": code, "decline_code": decline_code,
        "doc_url": "https://stripe.com/docs/error-codes/" + code.replace("_", "-"), "message": message,
        "payment_method": {"id": intent["payment_method"], "object": "payment_method",
                           "type": charge["payment_method_details"]["type"]},
        "type": error_type,
    })
    state.emit("payment_intent.payment_failed", intent)
    state.emit("charge.failed", charge)


def _record_decline(state: SandboxState, session: dict[str, Any], email: str, attempt: PaymentAttempt,
                    payment: Payment) -> None:
    intent = _ensure_intent(state, session, payment)
    charge = _new_charge(state, session, intent, payment, (email, attempt.name))
    mark_failed(state, intent, charge, payment.card.decline, "card_error")


# -- completing the session ------------------------------------------------------------------


def _complete_now(state: SandboxState, session: dict[str, Any], email: str, attempt: PaymentAttempt,
                  payment: Payment) -> dict[str, Any]:
    _ensure_customer(state, session, email, attempt.name)
    intent = _ensure_intent(state, session, payment)
    charge = _new_charge(state, session, intent, payment, (email, attempt.name))
    mark_succeeded(state, intent, charge)
    _mark_complete(state, session, email, attempt, "paid")
    _create_invoice_if_enabled(state, session, intent)
    _redeem_discount(state, session)
    state.emit("checkout.session.completed", session)
    settle_balance(state, charge)
    if payment.card is not None and payment.card.dispute:
        open_dispute(state, charge)
    return session


def _complete_free(state: SandboxState, session: dict[str, Any], email: str, attempt: PaymentAttempt) -> dict[str, Any]:
    _ensure_customer(state, session, email, attempt.name)
    _mark_complete(state, session, email, attempt, "no_payment_required")
    _create_invoice_if_enabled(state, session, None)
    _redeem_discount(state, session)
    state.emit("checkout.session.completed", session)
    return session


def _start_debit(state: SandboxState, session: dict[str, Any], email: str, attempt: PaymentAttempt,
                 payment: Payment) -> dict[str, Any]:
    _ensure_customer(state, session, email, attempt.name)
    intent = _ensure_intent(state, session, payment)
    charge = _new_charge(state, session, intent, payment, (email, attempt.name))
    intent.update(status="processing", processing=None)
    state.private[session["id"]]["debit_fails"] = payment.extra["fails"]
    state.emit("payment_intent.processing", intent)
    state.emit("charge.pending", charge)
    _mark_complete(state, session, email, attempt, "unpaid")
    _redeem_discount(state, session)
    state.emit("checkout.session.completed", session)
    delay = state.config.delayed_settle_seconds
    if delay is not None:
        state.schedule(delay, lambda: _settle_quietly(state, session["id"]))
    return session


def _mark_complete(state: SandboxState, session: dict[str, Any], email: str, attempt: PaymentAttempt,
                   payment_status: str) -> None:
    customer = state.get(session["customer"], "customer") or {}
    consent = session["consent_collection"] or {}
    session.update(status="complete", payment_status=payment_status, url=None, customer_details={
        "address": dict(NULL_ADDRESS), "business_name": None, "email": email, "individual_name": None,
        "name": attempt.name or customer.get("name"), "phone": None, "tax_exempt": "none", "tax_ids": [],
    })
    if consent.get("terms_of_service") == "required":
        session["consent"] = {"promotions": None, "terms_of_service": "accepted"}


def _create_invoice_if_enabled(state: SandboxState, session: dict[str, Any], intent: dict[str, Any] | None) -> None:
    if session["invoice_creation"]["enabled"]:
        create_session_invoice(state, session, intent)


def _redeem_discount(state: SandboxState, session: dict[str, Any]) -> None:
    private = state.private[session["id"]]
    for object_id in (private.get("coupon_id"), private.get("promotion_code_id")):
        obj = state.get(object_id)
        if obj is not None:
            obj["times_redeemed"] += 1


# -- settling delayed (SEPA) payments -------------------------------------------------------------


@locked
def settle_session(state: SandboxState, session_id: str, outcome: str | None = None) -> dict[str, Any]:
    """Settle a processing SEPA debit: ``succeeded``, ``failed``, or None for what the IBAN decides."""
    session = state.require(session_id, "checkout.session")
    intent = state.get(session["payment_intent"], "payment_intent")
    if session["status"] != "complete" or intent is None or intent["status"] != "processing":
        raise invalid_param(None, "This Checkout Session has no delayed payment waiting to settle.")
    succeeded = debit_succeeds(state, session_id, outcome)
    charge = settle_debit(state, intent, succeeded)
    if succeeded:
        session["payment_status"] = "paid"
        _create_invoice_if_enabled(state, session, intent)
        state.emit("checkout.session.async_payment_succeeded", session, {"payment_status": "unpaid"})
        settle_balance(state, charge)
    else:
        intent_ended_unpaid(state, intent)
        state.emit("checkout.session.async_payment_failed", session)
    return session


def debit_succeeds(state: SandboxState, owner_id: str, outcome: str | None) -> bool:
    """Whether a processing SEPA debit made on ``owner_id``'s page (a Checkout Session, an invoice) settles:
    ``outcome`` "succeeded" or "failed", or None for what its IBAN decided."""
    if outcome is None:
        outcome = "failed" if state.private[owner_id].get("debit_fails") else "succeeded"
    if outcome not in ("succeeded", "failed"):
        raise invalid_param("outcome", "outcome must be `succeeded` or `failed`.")
    return outcome == "succeeded"


def settle_debit(state: SandboxState, intent: dict[str, Any], succeeded: bool) -> dict[str, Any]:
    """Settle the processing debit of ``intent``, with its refunds asked meanwhile: its charge."""
    charge = state.require(intent["latest_charge"], "charge")
    if succeeded:
        mark_succeeded(state, intent, charge)
    else:
        failure = ("insufficient_funds", None, "The customer's account has insufficient funds to cover this payment.")
        mark_failed(state, intent, charge, failure, "invalid_request_error")
    settle_pending_refunds(state, charge, succeeded=succeeded)
    return charge


def _settle_quietly(state: SandboxState, session_id: str) -> None:
    """Scheduled settlement: nothing to do if a test settled the payment already or reset the sandbox."""
    try:
        settle_session(state, session_id)
    except StripeError:
        pass

