"""Demo data: an administrator, a manager, learners in each audience, free and paid courses, and (with the
sandbox) invoices with payment requests waiting in the learners' inbox."""
from __future__ import annotations

import re
from datetime import date, timedelta

from blinker import signal
from werkzeug.datastructures import MultiDict

from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core import audit, schools

from .host import SCHOOLS
from .models import Course, User, db
from .sandbox_keys import SANDBOX_KEYS

USERS = [
    ("admin", "Alice Admin", "admin@demo.test", "admin", "internal", None),
    ("manager", "Marc Manager", "manager@demo.test", "manager", "internal", None),
    ("learner", "Léa Learner", "learner@demo.test", "learner", "public", "+33612345678"),
    ("employee", "Eric Employee", "employee@demo.test", "learner", "internal", None),
    ("partner", "Paula Partner", "partner@demo.test", "learner", "partner", "+33698765432"),
]
#: The second school's people and courses, when the demo runs as a platform of two schools (``--platform``):
#: the ones above are the first school's (`host.SCHOOLS`).
NORD_USERS = [
    ("nord-admin", "Nina Nordin", "admin@nord.test", "admin", "internal", None),
    ("nord-learner", "Noé Nilsson", "learner@nord.test", "learner", "public", None),
]
NORD_COURSES = [
    ("Pottery for beginners", "Clay, wheel and kiln in six evenings.", ("60.00", "EUR", "20", "public")),
    ("Weaving workshop", "A weekend on the loom.", ("45.00", "EUR", "20", "public")),
]
#: The usernames of the first school: one account per role and audience, offered by the user switcher (with the
#: second school's, when the demo runs as a platform).
ROLE_USERNAMES = tuple(username for username, *_rest in USERS)
NORD_USERNAMES = tuple(username for username, *_rest in NORD_USERS)

COURSES = [
    # title, description, (price as an administrator types it in English, currency, VAT %, audience) or None
    ("Python for beginners", "Variables, loops and functions, step by step.", ("49.90", "EUR", "20", "public")),
    ("Advanced Flask", "Blueprints, extensions and testing.", ("129.00", "EUR", "20", "public")),
    ("Workplace safety", "Mandatory training for every employee.", None),
    ("Partner onboarding", "Selling and supporting our products.", ("299.00", "EUR", "20", "partner")),
    ("Internal leadership program", "For managers and future managers.", ("590.00", "EUR", "20", "internal")),
    ("Japanese business etiquette", "Meetings, gifts and emails in Japan.", ("8000", "JPY", "10", "public")),
    ("Data privacy essentials", "GDPR in practice.", ("19.90", "USD", "0", "public")),
    ("Welcome to the platform", "A free tour.", None),
    ("Data analysis bootcamp", "Ten weeks of pandas and SQL, starting in two months.", ("900.00", "EUR", "20", "public")),
]
#: Courses sold by deposit (title → the deposit fields of the course settings form) and their start dates.
DEPOSITS = {
    "Data analysis bootcamp": {"payment_plan": "deposit", "deposit_kind": "percent", "deposit_value": "30",
                               "balance_due": "before_start", "balance_due_days": "14",
                               "deposit_access": "deposit"},
}
STARTS_IN_DAYS = {"Data analysis bootcamp": 60}
#: The currencies the demo school accepts besides euros, and the courses priced in them (as typed in English);
#: the others are sold in their own currency only (the Japanese course in yen, the privacy course in dollars).
OTHER_CURRENCIES = "CHF USD JPY"
PRICES_ELSEWHERE = {
    "Python for beginners": {"price_chf": "47.00", "price_usd": "54.00"},
    "Advanced Flask": {"price_chf": "125.00", "price_usd": "139.00"},
}


#: The demo school's legal identity, printed on its invoices (a made-up SIRET whose check digits are right).
SELLER = {"seller_legal_name": "Demo School SAS", "seller_address": "12 rue des Écoles\n75005 Paris",
          "seller_siret": "12345678200010", "seller_vat_number": "FR11123456782",
          "seller_legal_form": "SAS au capital de 10 000 €"}
#: The sandbox account's public business details (Stripe Dashboard, Settings, Business).
SANDBOX_ACCOUNT = {"business_name": "Demo School", "business_address": ("12 rue des Écoles", "75005 Paris")}


def seed(app) -> None:
    if db.session.query(User.id).first() is not None:
        return
    with audit.acting(audit.VIA_SETUP):
        _seed(app)


def _seed(app) -> None:
    platform = bool(app.config.get("LMS_STRIPE_PLATFORM"))
    people = USERS + ([(*user, "nord") for user in NORD_USERS] if platform else [])
    for username, name, email, role, audience, phone, *school in people:
        db.session.add(User(username=username, name=name, email=email, role=role, audience=audience, phone=phone,
                            school=school[0] if school else "lumiere"))
    courses = []
    catalog = [(*course, "lumiere") for course in COURSES] + ([(*course, "nord") for course in NORD_COURSES]
                                                              if platform else [])
    for title, description, _offer, school in catalog:
        starts = STARTS_IN_DAYS.get(title)
        course = Course(title=title, description=description, school=school,
                        starts_on=date.today() + timedelta(days=starts) if starts else None)
        db.session.add(course)
        courses.append(course)
    db.session.commit()
    for course, (_title, _description, offer, _school) in zip(courses, catalog):
        if offer:
            _price(app, course, *offer)
    db.session.commit()
    if platform:
        _platform_settings(app, courses)
    elif app.config.get("LMS_STRIPE_API_BASE") and app.config.get("DEMO_ENABLE_PAYMENTS", True):
        # The settings an administrator enters on the plugin's payment settings page.
        payment_settings.save(db.session, {
            "enabled": True, "publishable_key": SANDBOX_KEYS["publishable_key"],
            "secret_key": SANDBOX_KEYS["secret_key"], "webhook_secrets": [SANDBOX_KEYS["webhook_secret"]],
            "vouchers_enabled": True, "klarna_enabled": True, "klarna_minimum": 10000,
            "sepa_debit_enabled": True, "terms_url": app.config.get("DEMO_TERMS_URL"),
            "school_name": "Demo School", "partial_payments_enabled": True, "partial_minimum": 1000,
            "prepaid_enabled": True, "other_currencies": OTHER_CURRENCIES,
            **SELLER,
        }, actor_id=None)
        db.session.commit()
        for course, (title, _description, offer) in zip(courses, COURSES):
            if offer and title in PRICES_ELSEWHERE:  # priced again, now in every currency accepted
                _price(app, course, *offer, others=PRICES_ELSEWHERE[title])
        db.session.commit()


def _platform_settings(app, courses) -> None:
    """As a platform, each school's settings (the platform's keys are in the app config; each school connects
    its own Stripe account from the LMS, Online payment)."""
    if not (app.config.get("LMS_STRIPE_API_BASE") and app.config.get("DEMO_ENABLE_PAYMENTS", True)):
        return
    for school, name in SCHOOLS.items():
        with schools.scope(school):
            payment_settings.save(db.session, {
                "enabled": True, "vouchers_enabled": True, "sepa_debit_enabled": True,
                "terms_url": app.config.get("DEMO_TERMS_URL"), "school_name": name, "partial_payments_enabled": True,
                "partial_minimum": 1000, "prepaid_enabled": True,
                **({"other_currencies": OTHER_CURRENCIES, **SELLER} if school == "lumiere" else {}),
            }, actor_id=None)
            db.session.commit()
    for course in courses:
        offer = next((offer for title, _d, offer in COURSES if title == course.title), None)
        if offer and course.title in PRICES_ELSEWHERE:
            _price(app, course, *offer, others=PRICES_ELSEWHERE[course.title])
    db.session.commit()


def _price(app, course, price: str, currency: str, vat_rate: str, audience: str, others: dict | None = None) -> None:
    """Price a course as the course settings page does: through the plugin's answer to its form (as a
    platform, in the course's school)."""
    form = MultiDict({"lms_stripe-paid": "on", "lms_stripe-price": price, "lms_stripe-currency": currency,
                      "lms_stripe-vat_rate": vat_rate, "lms_stripe-audience": audience, "lms_stripe-on_sale": "on",
                      **{f"lms_stripe-{name}": value for name, value in DEPOSITS.get(course.title, {}).items()},
                      **{f"lms_stripe-{name}": value for name, value in (others or {}).items()}})
    school = course.school if app.config.get("LMS_STRIPE_PLATFORM") else schools.DEFAULT
    with app.test_request_context(headers={"Accept-Language": "en"}), schools.scope(school):
        refused = [answer for _receiver, answer in signal("lms.course.settings_saved").send(app, course=course, form=form)
                   if answer]
    if refused:
        raise RuntimeError(f"The demo's price of {course.title} is refused: {refused}")


#: Invoices the demo's administrator has sent when the demo starts: (username, line, amount typed in
#: English, the part asked now, or None: no request). Their requests are in the learners' inbox; a learner with
#: two invoices to pay may pay them together from My payments.
OPEN_INVOICES = [
    ("learner", "Coaching: 6 sessions", "300.00", "90.00"),
    ("partner", "Certification exam fee", "120.00", "120.00"),
    ("learner", "Exam registration", "80.00", None),
]


def seed_payment_requests(app) -> None:
    """Invoices and payment requests, made as the administrator makes them: through the plugin's pages
    (it issues them at Stripe, so this runs once the sandbox is up)."""
    client = app.test_client()
    client.get("/demo/login/admin")
    for username, line, amount, asked in OPEN_INVOICES:
        user = db.session.query(User).filter_by(username=username).one()
        page = client.get("/payments/admin/invoices/new", headers={"Accept-Language": "en"})
        response = client.post("/payments/admin/invoices/new", headers={"Accept-Language": "en"}, data={
            "csrf_token": _token(page.get_data(as_text=True)), "learner": str(user.id), "currency": "EUR",
            "due": (date.today() + timedelta(days=30)).isoformat(), "line-1-description": line,
            "line-1-amount": amount, "line-1-vat_rate": "20"})
        if response.status_code != 302:
            raise RuntimeError(f"The demo's invoice for {username} is refused ({response.status_code}).")
        if asked is None:
            continue
        request_page = response.headers["Location"].rstrip("/") + "/request"
        page = client.get(request_page, headers={"Accept-Language": "en"})
        response = client.post(request_page, headers={"Accept-Language": "en"}, data={
            "csrf_token": _token(page.get_data(as_text=True)), "amount": asked, "email": "on", "sms": "on",
            "due": (date.today() + timedelta(days=14)).isoformat(), "locale": "en"})
        if response.status_code != 302:
            raise RuntimeError(f"The demo's payment request for {username} is refused ({response.status_code}).")


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if found is None:
        raise RuntimeError("The plugin's page has no CSRF token.")
    return found.group(1)
