"""Connect Onboarding as the browser sees it: an Account Link's URL, then the hosted onboarding pages.

``GET /setup/c/{account}/{token}`` (an Account Link's ``url``) opens onboarding once: it redirects to
``/setup/s/{session}``, the flow the browser keeps for an hour. Opened again, or after the link expired, it
redirects to the link's ``refresh_url`` (the platform makes a new link), as Stripe does.

The flow asks, in the browser's language (French or English, like the checkout page; ``locales.py``):

1. the business (``#company-name``, ``#activity`` (a merchant category), ``#description`` (its products or
   services), ``#iban`` (the payout bank account; checked as on Checkout)), ``#continue``;
2. verification: ``#tos`` (the services agreement), ``#submit``: the details are submitted and Stripe
   verifies them (``connect.py``), then the browser goes to ``return_url``;
3. when verification asks for more, ``#document`` (a PDF, JPEG or PNG of 10 MB at most) and ``#upload``.

Otherwise the page says where the account stands (``#status``). Every page has ``#exit`` (back to
``return_url``); a refused form comes back with status 400, ``#form-errors`` (``role=alert``, a link to each
field) and each field's message (``#<field>-error``, ``aria-describedby``, ``aria-invalid``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from . import account_links, connect
from .bank_accounts import read_iban
from .errors import StripeError
from .locales import dates, language, page_locale, translator
from .state import SandboxState

bp = Blueprint("stripe_sandbox_onboarding", __name__)

#: The activities the form offers, as merchant category codes (ISO 18245).
ACTIVITIES = (
    ("8299", "Schools and educational services"),
    ("8244", "Business and secretarial schools"),
    ("8249", "Trade and vocational schools"),
    ("8220", "Colleges and universities"),
    ("5815", "Digital goods: books, films, music and courses"),
)
DOCUMENT_TYPES = (".pdf", ".jpg", ".jpeg", ".png")
DOCUMENT_MAX_BYTES = 10 * 1024 * 1024
FIELD_IDS = {"company_name": "company-name", "activity": "activity", "description": "description", "iban": "iban",
             "tos": "tos", "document": "document"}


def _state() -> SandboxState:
    return current_app.extensions["stripe_sandbox"]


def _locale() -> str:
    return page_locale(None, request.accept_languages)


def _message(title: str, message: str, status: int) -> tuple[str, int]:
    _ = translator(_locale())
    return render_template("message.html", title=_(title), message=_(message), link=None,
                           lang=language(_locale()), _=_), status


@bp.get("/setup/c/<account_id>/<token>")
def open_account_link(account_id: str, token: str) -> Any:
    """An Account Link's URL: single use, for :data:`account_links.LINK_SECONDS`."""
    outcome, target = account_links.open_link(_state(), account_id, token)
    if outcome == "onboarding":
        return redirect(url_for(".onboarding", session=target), code=303)
    if outcome == "refresh":
        return redirect(target, code=302)
    return _message("Not found", "This onboarding link does not exist.", 404)


@bp.route("/setup/s/<session>", methods=["GET", "POST"])
def onboarding(session: str) -> Any:
    """The onboarding flow of one account: the step its requirements call for."""
    state = _state()
    record = account_links.onboarding_session(state, session)
    if record is None:
        return _message("Not found", "This onboarding link does not exist.", 404)
    if state.now() >= record["expires_at"]:
        return redirect(record["refresh_url"], code=302)
    account = connect.connected_account(state, record["account"])
    step = _step(state, account)
    if request.method == "POST" and request.form.get("step") == step:
        errors, form = _submit(state, account, step)
        if not errors:
            done = step != "business"  # the business step leads to verification; the others end here
            return redirect(record["return_url"] if done else url_for(".onboarding", session=session), code=303)
        return _page(state, account, record, step, form, errors), 400
    return _page(state, account, record, step, request.form if request.method == "POST" else {}, {})


def _step(state: SandboxState, account: dict[str, Any]) -> str:
    known = connect.facts(state, account["id"])
    business = {"business_profile.mcc", "business_profile.product_description", "company.name", "external_account"}
    if not account["details_submitted"]:
        editing = request.args.get("edit") == "business"
        return "business" if editing or not business <= known.provided else "verification"
    return "document" if known.review == "documents_required" else "status"


# -- the forms --------------------------------------------------------------------------------------


def _submit(state: SandboxState, account: dict[str, Any], step: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Carry out a step's form; the errors to show (field -> message) and the values to show again."""
    _ = translator(_locale())
    form = request.form
    errors: dict[str, str] = {}
    with state.lock:
        if step == "business":
            errors = _save_business(state, account, form, _)
        elif step == "verification":
            if form.get("tos") != "accepted":
                errors["tos"] = _("Accept the Stripe Connected Account Agreement to continue.")
            else:
                connect.submit_details(state, account, ip=request.remote_addr or "127.0.0.1",
                                       user_agent=request.headers.get("User-Agent"))
        elif step == "document":
            errors = _save_document(state, account, _)
    return errors, {key: form.get(key, "") for key in ("company_name", "activity", "description", "iban")}


def _save_business(state: SandboxState, account: dict[str, Any], form: Any, _: Any) -> dict[str, str]:
    errors: dict[str, str] = {}
    company = (form.get("company_name") or "").strip()
    if not company:
        errors["company_name"] = _("Enter the name of your company.")
    elif len(company) > 100:
        errors["company_name"] = _("The company name can have at most 100 characters.")
    mcc = form.get("activity") or ""
    if mcc not in dict(ACTIVITIES):
        errors["activity"] = _("Choose your activity.")
    description = (form.get("description") or "").strip()
    if not description:
        errors["description"] = _("Describe your products or services.")
    elif len(description) > 500:
        errors["description"] = _("The description can have at most 500 characters.")
    try:
        iban = read_iban(form.get("iban"))
    except StripeError as error:
        errors["iban"] = _(error.message)
    if not errors:
        connect.save_business(state, account, company=company, mcc=mcc, description=description, iban=iban)
    return errors


def _save_document(state: SandboxState, account: dict[str, Any], _: Any) -> dict[str, str]:
    upload = request.files.get("document")
    if upload is None or not upload.filename:
        return {"document": _("Choose the document to upload.")}
    if not upload.filename.lower().endswith(DOCUMENT_TYPES):
        return {"document": _("The document must be a PDF, JPEG or PNG file.")}
    size = len(upload.read(DOCUMENT_MAX_BYTES + 1))
    if size == 0:
        return {"document": _("The document is empty.")}
    if size > DOCUMENT_MAX_BYTES:
        return {"document": _("The document is larger than 10 MB.")}
    connect.submit_document(state, account, upload.filename)
    return {}


# -- the page ---------------------------------------------------------------------------------------


_TITLES = {"business": "Your business", "verification": "Verification", "document": "A document is needed",
           "status": "Your account"}


def _page(state: SandboxState, account: dict[str, Any], record: dict[str, Any], step: str, form: Any,
          errors: dict[str, str]) -> str:
    locale = _locale()
    _ = translator(locale)
    bank = (account["external_accounts"]["data"] or [None])[0]
    activity = dict(ACTIVITIES).get(account["business_profile"]["mcc"] or "")
    values = form or {"company_name": account["company"]["name"] or account["business_profile"]["name"] or "",
                      "activity": account["business_profile"]["mcc"] or "",
                      "description": account["business_profile"]["product_description"] or "", "iban": ""}
    return render_template(
        "onboarding.html", _=_, lang=language(locale), step=step, title=_(_TITLES[step]), errors=errors,
        field_ids=FIELD_IDS, form=values, activities=[(code, _(label)) for code, label in ACTIVITIES],
        account=account, bank=bank, activity=_(activity) if activity else None,
        return_url=record["return_url"], platform=state.config.business_name,
        deadline=dates(locale)(account["requirements"]["current_deadline"])
        if account["requirements"]["current_deadline"] else None,
        status=_(_status_message(state, account)),
    )


def _status_message(state: SandboxState, account: dict[str, Any]) -> str:
    reason = account["requirements"]["disabled_reason"]
    if account["charges_enabled"]:
        return "Your account is complete: you can accept payments."
    if reason == "requirements.pending_verification":
        return "Stripe is verifying your information. You can accept payments once it is verified."
    return "Stripe has paused payments on this account. Contact Stripe support to know more."
