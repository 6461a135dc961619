"""Every page of the plugin, of the demo pages that show its fragments, and of the sandbox, in English and in
French, on a phone (375 px) and on a desktop (1280 px): none scrolls sideways, each speaks the language asked,
and axe-core finds no violation. One demo and one browser serve the whole walk, on data made through the
plugin's pages: invoices with payment requests, purchases paid and open, a partial refund, a free enrollment,
a rejected event. The walk records the endpoints it saw, and fails when a page of the url_map was not visited."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError
from flask import request as flask_request, request_finished

from lms_stripe_plugin.core.models import Invoice, Purchase
from lms_stripe_plugin.demo import SANDBOX_KEYS
from lms_stripe_plugin.demo.inbox import for_user
from lms_stripe_plugin.demo.models import User, db
from lms_stripe_plugin.demo.seed import seed_payment_requests
from lms_stripe_plugin.testing import post_webhook

from .checks import axe_violations, sideways, skip_without_axe
from .conftest import serve_demo, shot

pytestmark = pytest.mark.browser

WIDTHS = (375, 1280)
LANGUAGES = ("en", "fr")
BROWSER_LOCALES = {"en": "en-GB", "fr": "fr-FR"}

#: GET endpoints that are not pages, and why the walk does not visit them.
NOT_PAGES = {
    "static": "the host's static files",
    "demo.index": "redirects to the catalog",
    "demo.login": "signs a demo user in and redirects",
    "demo.logout": "signs out and redirects",
    "demo.set_lang": "sets the language and redirects",
    "demo.set_school": "sets a visitor's school (the demo as a platform) and redirects",
    "lms_stripe.admin_home": "redirects to the payment settings",
    "lms_stripe.admin_connect": "platform mode only (404 here): test_connect.py walks it at both widths in both languages",
    "lms_stripe.admin_connect_return": "platform mode only: reads the account, then redirects to Online payment",
    "lms_stripe.admin_connect_refresh": "platform mode only: redirects to a new onboarding link",
    "lms_stripe.admin_invoices_csv": "a CSV file",
    "lms_stripe.admin_invoices_xlsx": "an Excel file",
    "lms_stripe.admin_requests_csv": "a CSV file",
    "lms_stripe.invoice_pdf": "redirects to the invoice's PDF",
    "lms_stripe.link_button": "the script of a payment link's button (JavaScript)",
    "lms_stripe.pricing_preview": "JSON for the course form's preview (the course settings page calls it)",
    "sandbox:stripe_sandbox_hosted.invoice_file": "a PDF",
    "sandbox:stripe_sandbox_hosted.credit_note_file": "a PDF",
}
#: The sandbox's pages: its other GET endpoints are its API (JSON), not pages.
SANDBOX_PAGES = "stripe_sandbox_hosted."


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


class _Browserless:
    """A signed-in user of the demo through Flask's test client, to make the walk's data as people do."""

    def __init__(self, app, username: str, lang: str = "en"):
        self.client = app.test_client()
        self.client.get(f"/demo/login/{username}")
        self.client.get(f"/demo/lang/{lang}")

    def post_form(self, path: str, form_page: str | None = None, **fields):
        page = self.client.get(form_page or path).get_data(as_text=True)
        return self.client.post(path, data={"csrf_token": _token(page), **fields})

    def buy(self, course_id: int, sandbox, *, pay: bool, currency: str | None = None) -> str:
        """Open a Checkout session for the course (in ``currency``, as a learner who chose it sends it); pay it
        on the sandbox when ``pay``. Its id."""
        response = self.post_form(f"/payments/checkout/{course_id}", form_page=f"/courses/{course_id}",
                                  **({"currency": currency} if currency else {}))
        assert response.status_code == 303, response.get_data(as_text=True)
        session_id = response.headers["Location"].rsplit("/", 1)[-1]
        if pay:
            paid = requests.post(f"{sandbox.url}/_sandbox/checkout/sessions/{session_id}/pay", json={}, timeout=30)
            assert paid.ok, paid.text
            assert sandbox.state.wait_for_deliveries(20)
        return session_id


def _rejected_event(app) -> None:
    """A signed event that can never be used (its object is not a Checkout Session): the events page lists it."""
    event = {"id": "evt_walk_rejected", "object": "event", "type": "checkout.session.completed",
             "api_version": "2026-10-28.endive", "created": 1_790_000_000, "livemode": False,
             "data": {"object": {"id": "ch_not_a_session", "object": "charge"}}}
    response = post_webhook(app.test_client(), event, SANDBOX_KEYS["webhook_secret"])
    assert response.status_code == 200, response.get_data(as_text=True)


def _make_data(app, sandbox) -> dict:
    """What the walk's pages show, made through the plugin's pages (and Stripe's, the sandbox's)."""
    with app.app_context():
        seed_payment_requests(app)
        users = {u.username: u for u in db.session.query(User)}
        learner = users["learner"]
    lea, lea_fr = _Browserless(app, "learner"), _Browserless(app, "learner", "fr")
    eric_fr = _Browserless(app, "employee", "fr")
    paid = {"en": lea.buy(1, sandbox, pay=True), "fr": eric_fr.buy(5, sandbox, pay=True)}
    open_sessions = {"en": lea.buy(2, sandbox, pay=False), "fr": lea_fr.buy(7, sandbox, pay=False, currency="USD")}
    admin = _Browserless(app, "admin")
    # Stripe's invoice page speaks its customer's language: an English-speaking buyer's, for the English walk.
    english = admin.buy(1, sandbox, pay=True)
    with app.app_context():
        purchases = {lang: db.session.query(Purchase).filter_by(stripe_checkout_session_id=sid).one()
                     for lang, sid in {**paid, **{f"open-{k}": v for k, v in open_sessions.items()}}.items()}
        bought = db.session.query(Invoice).filter_by(purchase_id=purchases["en"].id).one()
        asked = db.session.query(Invoice).filter_by(user_id=str(learner.id), source="admin").first()
        hosted = {"en": db.session.query(Invoice).join(Purchase, Purchase.id == Invoice.purchase_id)
                  .filter(Purchase.stripe_checkout_session_id == english).one().hosted_url,
                  "fr": db.session.query(Invoice).filter_by(purchase_id=purchases["fr"].id).one().hosted_url}
        charge = sandbox.state.all("charge")[0]["id"]
        to_pay = _open_hosted_invoices(sandbox)
    refund = admin.post_form(f"/payments/admin/invoices/{bought.id}/refund", amount="5.00", reason="Late start")
    assert refund.status_code == 302, refund.get_data(as_text=True)
    manager = _Browserless(app, "manager")
    enrolled = manager.post_form("/backoffice/enroll", course_id="4", user_ids=str(users["partner"].id))
    assert enrolled.status_code == 302
    _rejected_event(app)
    made = admin.post_form("/payments/admin/links/new", "/payments/admin/links/new", title="Study trip to Lyon",
                           purpose="Share of the trip's costs", kind="free", minimum="10", maximum="500",
                           currency="EUR", vat_rate="20")
    assert made.status_code == 302, made.get_data(as_text=True)
    link_id = int(made.headers["Location"].rstrip("/").split("/")[-1])
    credited = admin.post_form(f"/payments/admin/balances/{learner.id}", direction="credit", amount="25.00",
                               currency="EUR", reason="Welcome credit", token="walk-credit")
    assert credited.status_code == 303, credited.get_data(as_text=True)
    page = admin.client.get(f"/payments/admin/links/{link_id}").get_data(as_text=True)
    link_page = re.search(r'id="link-url" readonly value="[^"]*(/payments/link/[^"]+)"', page).group(1)
    links = [re.search(r"(/payments/pay/[\w-]+)", item.body).group(1) for item in for_user(
        app.config["LMS_STRIPE_MAIL_FILE"], None, email=learner.email, phone=None)]
    return {"learner": learner.id, "paid": paid, "open": {lang: purchases[f"open-{lang}"].id for lang in LANGUAGES},
            "open_sessions": open_sessions, "bought": bought.id, "asked": asked.id, "hosted": hosted, "to_pay": to_pay,
            "charge": charge, "pay_link": links[0], "link": link_id, "link_page": link_page,
            "learner": str(learner.id), **_settlement(app, admin, users["partner"])}


def _open_hosted_invoices(sandbox) -> dict[str, str]:
    """The hosted page of an invoice still to pay (its form to pay it) in each language: the first open
    invoice whose customer speaks it."""
    found: dict[str, str] = {}
    for invoice in sandbox.state.all("invoice"):
        customer = sandbox.state.get(invoice["customer"], "customer") or {}
        lang = (customer.get("preferred_locales") or ["en"])[0].split("-")[0]
        if invoice["status"] == "open" and invoice["amount_remaining"] > 0:
            found.setdefault(lang, invoice["hosted_invoice_url"])
    assert set(LANGUAGES) <= found.keys(), found
    return found


def _settlement(app, admin, partner) -> dict:
    """A second invoice for the partner, and the school's request for both in one payment: its pay page."""
    made = admin.post_form("/payments/admin/invoices/new", learner=str(partner.id), currency="EUR",
                           due=(date.today() + timedelta(days=40)).isoformat(), **{"line-1-description": "Workshop", "line-1-amount": "60.00",
                                                "line-1-vat_rate": "20"})
    assert made.status_code == 302, made.get_data(as_text=True)
    with app.app_context():
        ids = [str(i.id) for i in db.session.query(Invoice).filter_by(user_id=str(partner.id), status="open")]
    form = f"/payments/admin/requests/new?learner={partner.id}"
    asked = admin.post_form("/payments/admin/requests/new", form, learner=str(partner.id), invoice=ids,
                            due=(date.today() + timedelta(days=20)).isoformat(), email="on", locale="en")
    assert asked.status_code == 302, asked.get_data(as_text=True)
    mails = for_user(app.config["LMS_STRIPE_MAIL_FILE"], None, email=partner.email, phone=None)
    return {"settle_link": re.search(r"(/payments/pay/[\w-]+)", mails[-1].body).group(1)}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The demo with payments on (the sandbox's keys), its data, and the endpoints each request reached."""
    with serve_demo(tmp_path_factory.mktemp("walk"), DEMO_ENABLE_PAYMENTS=True) as served:
        app, sandbox = served["app"], served["sandbox"]
        data = _make_data(app, sandbox)
        seen: set[str] = set()
        recorders = {app: _recorder(seen, ""), sandbox.app: _recorder(seen, "sandbox:")}
        for flask_app, record in recorders.items():
            request_finished.connect(record, flask_app)
        yield {**served, **data, "seen": seen}
        for flask_app, record in recorders.items():
            request_finished.disconnect(record, flask_app)


def _recorder(seen: set[str], prefix: str):
    """Records the endpoint of each HTML page served (GET), as ``prefix`` + endpoint."""
    def record(_sender, response, **_extra):
        if flask_request.method == "GET" and response.mimetype == "text/html" and flask_request.endpoint:
            seen.add(prefix + flask_request.endpoint)
    return record


@dataclass(frozen=True)
class Visit:
    """One page: where, as whom, and what to do there before checking it (fill and submit a form)."""

    name: str
    path: Callable[[dict, str], str]
    user: str | None = None
    act: Callable | None = None


def _errors_shown(page, fields: list[str], summary: str = "error-summary") -> list[str]:
    """What is missing of a refused form's answer: its summary has the focus and leads to each field at fault,
    which is marked invalid and described by its message."""
    problems = []
    try:  # autofocus moves the focus at the page's first rendering
        page.wait_for_function("(id) => document.activeElement && document.activeElement.id === id", arg=summary,
                               timeout=3000)
    except PlaywrightError:
        focused = page.evaluate("() => document.activeElement && document.activeElement.id")
        problems.append(f"the focus is on {focused!r}, not on the summary of the errors (#{summary})")
    return problems + _errors_marked(page, fields, summary)


def _errors_marked(page, fields: list[str], summary: str) -> list[str]:
    problems = []
    links = page.eval_on_selector_all(f"#{summary} a", "links => links.map(a => a.getAttribute('href'))")
    for name in fields:
        if f"#{name}" not in links:
            problems.append(f"the summary does not lead to {name} (it leads to {links})")
        described = page.evaluate("""(name) => {
            const field = document.getElementById(name);
            if (!field || field.getAttribute('aria-invalid') !== 'true') return false;
            const ids = (field.getAttribute('aria-describedby') || '').split(' ');
            const message = document.getElementById(name + '-error');
            return ids.includes(name + '-error') && !!message && message.textContent.trim().length > 0;
        }""", name)
        if not described:
            problems.append(f"{name} is not marked invalid and described by its message")
    return problems


def _submit_settings_errors(page):
    page.fill("#publishable_key", "pk_live_51Abcdefghijkl")  # the stored secret key is a test key
    page.fill("#default_currency", "ZZZ")
    page.fill("#terms_url", "javascript:alert(1)")
    page.fill("#reminder_max", "99")
    page.click("form.card button[type=submit]")
    return _errors_shown(page, ["secret_key", "default_currency", "terms_url", "reminder_max"])


def _submit_invoice_errors(page):
    page.fill("#learner", "")
    page.fill("#due", "2001-01-01")
    page.fill("#line-1-description", "Coaching")
    page.fill("#line-1-amount", "beaucoup")
    page.click("#create-invoice")
    return _errors_shown(page, ["learner", "due", "line-1-amount"])


def _submit_request_errors(page):
    page.fill("#amount", "beaucoup")
    page.fill("#due", "2001-01-01")
    page.uncheck("input[name=email]")
    page.uncheck("input[name=sms]")
    page.click("#send-request")
    return _errors_shown(page, ["amount", "due"])


def _choose_nothing(page):
    """Pay the chosen invoices with none chosen: the refusal's summary takes the focus."""
    page.click("#pay-chosen")
    return _errors_shown(page, [])


def _submit_settlement_errors(page):
    for box in page.query_selector_all("input[name=invoice]"):
        box.uncheck()
    page.fill("#due", "2001-01-01")
    page.uncheck("input[name=email]")
    page.click("#send-request")
    return _errors_shown(page, ["due"])


def _submit_refund_errors(page):
    page.fill("#amount", "0,001")
    page.click("form button[type=submit]")
    return _errors_shown(page, ["amount"])


def _type_bad_vat_rate(page):
    """The live preview names the field at fault (the VAT rate, not the price) and marks it alone."""
    page.fill("#lms_stripe-vat_rate", "150")
    try:
        page.wait_for_selector("#lms-stripe-breakdown li", timeout=3000)
    except PlaywrightError:
        return ["the preview shows no error for a VAT rate of 150 %"]
    shown = page.inner_text("#lms-stripe-breakdown")
    marked = page.eval_on_selector_all("[aria-invalid=true]", "fields => fields.map(f => f.id)")
    label = page.inner_text("label[for=lms_stripe-vat_rate]")
    return ([] if shown.startswith(label) else [f"the preview does not name the VAT rate: {shown!r}"]) + \
        ([] if marked == ["lms_stripe-vat_rate"] else [f"the preview marks {marked}, not the VAT rate alone"])


def _submit_course_errors(page):
    page.fill("#title", "")
    page.fill("#lms_stripe-price", "abc")
    page.fill("#lms_stripe-vat_rate", "150")
    page.click("form.card button[type=submit]")
    return (_errors_shown(page, ["title"]) +
            _errors_marked(page, ["lms_stripe-price", "lms_stripe-vat_rate"], summary="lms-stripe-pricing-errors"))


VISITS = [
    # The learner's pages (and the demo's pages that show the plugin's fragments).
    Visit("catalog", lambda s, lang: "/catalog", "learner"),
    Visit("course bought", lambda s, lang: "/courses/1", "learner"),
    Visit("course to buy", lambda s, lang: "/courses/3", "learner"),
    Visit("course payment page", lambda s, lang: "/payments/courses/2", "learner"),
    Visit("checkout success", lambda s, lang: f"/payments/checkout/success?session_id={s['paid']['en']}", "learner"),
    Visit("checkout cancelled", lambda s, lang: f"/payments/checkout/cancel/{s['open']['en']}", "learner"),
    Visit("my invoices", lambda s, lang: "/payments/invoices", "learner"),
    Visit("my payments", lambda s, lang: "/payments/my-payments", "learner"),
    Visit("my payments, none chosen", lambda s, lang: "/payments/my-payments", "learner", _choose_nothing),
    Visit("inbox", lambda s, lang: "/inbox", "learner"),
    Visit("pay page", lambda s, lang: s["pay_link"]),
    Visit("pay page of several invoices", lambda s, lang: s["settle_link"]),
    Visit("not found", lambda s, lang: "/payments/no-such-page", "learner"),
    Visit("terms", lambda s, lang: "/terms"),
    Visit("sign in", lambda s, lang: "/demo/sign-in"),
    # The administrators' pages.
    Visit("settings", lambda s, lang: "/payments/admin/settings", "admin"),
    Visit("settings refused", lambda s, lang: "/payments/admin/settings", "admin", _submit_settings_errors),
    Visit("invoices", lambda s, lang: "/payments/admin/invoices", "admin"),
    Visit("invoices by amount", lambda s, lang: "/payments/admin/invoices?sort=-amount", "admin"),
    Visit("totals", lambda s, lang: "/payments/admin/invoices/totals", "admin"),
    Visit("invoice bought", lambda s, lang: f"/payments/admin/invoices/{s['bought']}", "admin"),
    Visit("invoice asked", lambda s, lang: f"/payments/admin/invoices/{s['asked']}", "admin"),
    Visit("cancel", lambda s, lang: f"/payments/admin/invoices/{s['bought']}/cancel", "admin"),
    Visit("refund", lambda s, lang: f"/payments/admin/invoices/{s['bought']}/refund", "admin"),
    Visit("refund refused", lambda s, lang: f"/payments/admin/invoices/{s['bought']}/refund", "admin",
          _submit_refund_errors),
    Visit("new invoice", lambda s, lang: "/payments/admin/invoices/new", "admin"),
    Visit("new invoice refused", lambda s, lang: "/payments/admin/invoices/new", "admin", _submit_invoice_errors),
    Visit("request payment", lambda s, lang: f"/payments/admin/invoices/{s['asked']}/request", "admin"),
    Visit("request refused", lambda s, lang: f"/payments/admin/invoices/{s['asked']}/request", "admin",
          _submit_request_errors),
    Visit("requests", lambda s, lang: "/payments/admin/requests", "admin"),
    Visit("request several invoices", lambda s, lang: f"/payments/admin/requests/new?learner={s['learner']}", "admin"),
    Visit("request several refused", lambda s, lang: f"/payments/admin/requests/new?learner={s['learner']}", "admin",
          _submit_settlement_errors),
    Visit("payment links", lambda s, lang: "/payments/admin/links", "admin"),
    Visit("new payment link", lambda s, lang: "/payments/admin/links/new", "admin"),
    Visit("payment link", lambda s, lang: f"/payments/admin/links/{s['link']}", "admin"),
    Visit("payment link's page", lambda s, lang: s["link_page"]),
    Visit("balances", lambda s, lang: "/payments/admin/balances", "admin"),
    Visit("balance", lambda s, lang: f"/payments/admin/balances/{s['learner']}", "admin"),
    Visit("request a top-up", lambda s, lang: f"/payments/admin/balances/{s['learner']}/request", "admin"),
    Visit("request a top-up refused", lambda s, lang: f"/payments/admin/balances/{s['learner']}/request", "admin",
          _submit_request_errors),
    Visit("new top-up link", lambda s, lang: f"/payments/admin/links/new?learner={s['learner']}&topup=1", "admin"),
    Visit("free enrollments", lambda s, lang: "/payments/admin/free-enrollments", "admin"),
    Visit("audit log", lambda s, lang: "/payments/admin/audit", "admin"),
    Visit("stripe events", lambda s, lang: "/payments/admin/events", "admin"),
    Visit("course settings", lambda s, lang: "/courses/1/settings", "admin"),
    Visit("course price preview", lambda s, lang: "/courses/1/settings", "admin", _type_bad_vat_rate),
    Visit("course settings refused", lambda s, lang: "/courses/1/settings", "admin", _submit_course_errors),
    Visit("back office", lambda s, lang: "/backoffice/enroll", "manager"),
    # The sandbox's pages (Stripe's, in production), in the language of their session or customer.
    Visit("sandbox checkout", lambda s, lang: f"{s['sandbox'].url}/c/pay/{s['open_sessions'][lang]}"),
    Visit("sandbox session complete", lambda s, lang: f"{s['sandbox'].url}/c/pay/{s['paid'][lang]}"),
    Visit("sandbox thank you", lambda s, lang: f"{s['sandbox'].url}/c/complete/{s['paid'][lang]}"),
    Visit("sandbox hosted invoice", lambda s, lang: s["hosted"][lang]),
    Visit("sandbox hosted invoice to pay", lambda s, lang: s["to_pay"][lang]),
    Visit("sandbox receipt", lambda s, lang: f"{s['sandbox'].url}/receipts/{s['charge']}"),
]


#: The README's screenshots the walk takes (with `make screenshots`): (visit, language, width) -> name.
SCREENSHOTS = {
    ("invoices", "fr", 375): "35-factures-admin-telephone",
    ("settings refused", "en", 1280): "36-admin-settings-every-error",
    ("course settings refused", "en", 1280): "37-admin-course-price-refused",
    ("my payments", "en", 375): "38-my-payments-phone",
    ("sandbox hosted invoice", "fr", 375): "39-facture-stripe-telephone",
}


def _sign_in(page, base: str, user: str | None, lang: str) -> None:
    page.goto(f"{base}/demo/logout" if user is None else f"{base}/demo/login/{user}")
    page.goto(f"{base}/demo/lang/{lang}")


def _act(page, visit: Visit) -> list[str]:
    """Do what the visit does on the page (a form filled in and sent); why it could not, if it could not."""
    if visit.act is None:
        return []
    try:
        return visit.act(page)
    except PlaywrightError as err:
        return [f"could not be used: {str(err).splitlines()[0]}"]


def _check(page, width: int, lang: str) -> list[str]:
    problems = []
    html_lang = page.evaluate("() => document.documentElement.lang")
    if html_lang != lang:
        problems.append(f"speaks {html_lang!r}, not {lang!r}")
    overflow = sideways(page, width)
    if overflow:
        problems.append(f"scrolls sideways: {overflow}")
    problems += axe_violations(page)
    return problems


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_fits_speaks_the_language_and_passes_axe(site, browser, lang, width):
    base = site["base"]
    context = browser.new_context(viewport={"width": width, "height": 800}, locale=BROWSER_LOCALES[lang],
                                  is_mobile=width < 600, has_touch=width < 600)
    page = context.new_page()
    page.set_default_timeout(5000)
    site["seen"].clear()
    report, signed_in = [], object()
    try:
        for visit in VISITS:
            if visit.user != signed_in:
                _sign_in(page, base, visit.user, lang)
                signed_in = visit.user
            url = visit.path(site, lang)
            page.goto(url if url.startswith("http") else base + url)
            problems = _act(page, visit) + _check(page, width, lang)
            if (visit.name, lang, width) in SCREENSHOTS:
                shot(page, SCREENSHOTS[visit.name, lang, width])
            if problems:
                report.append(f"{visit.name} ({page.url.removeprefix(base)}):\n  " + "\n  ".join(problems))
    finally:
        context.close()
    report += _coverage(site)
    assert not report, f"{len(report)} problem(s) at {width}px in {lang}:\n" + "\n".join(report)
    skip_without_axe()


def _coverage(site) -> list[str]:
    """The GET pages of the demo's and the sandbox's url_maps the walk did not see, and the endpoints it
    says are not pages that no longer exist."""
    endpoints = {rule.endpoint for rule in site["app"].url_map.iter_rules() if "GET" in rule.methods}
    endpoints |= {"sandbox:" + rule.endpoint for rule in site["sandbox"].app.url_map.iter_rules()
                  if "GET" in rule.methods and rule.endpoint.startswith(SANDBOX_PAGES)}
    problems = []
    missed = endpoints - set(NOT_PAGES) - site["seen"]
    if missed:
        problems.append("pages of the url_map the walk did not visit: " + ", ".join(sorted(missed)))
    stale = set(NOT_PAGES) - endpoints
    if stale:
        problems.append("NOT_PAGES names endpoints that no longer exist: " + ", ".join(sorted(stale)))
    return problems
