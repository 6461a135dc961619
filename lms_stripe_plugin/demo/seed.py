"""Demo data: an administrator, a manager, learners in each audience, free and paid courses."""
from __future__ import annotations

from lms_stripe_plugin import settings as payment_settings
from lms_stripe_plugin.pricing import save_offer

from .models import Course, User, db

USERS = [
    ("admin", "Alice Admin", "admin@demo.test", "admin", "internal"),
    ("manager", "Marc Manager", "manager@demo.test", "manager", "internal"),
    ("learner", "Léa Learner", "learner@demo.test", "learner", "public"),
    ("employee", "Eric Employee", "employee@demo.test", "learner", "internal"),
    ("partner", "Paula Partner", "partner@demo.test", "learner", "partner"),
]
#: The usernames above: one account per role and audience, offered by the user switcher.
ROLE_USERNAMES = tuple(username for username, *_rest in USERS)

COURSES = [
    # title, description, (amount, currency, vat basis points, audience) or None for free
    ("Python for beginners", "Variables, loops and functions, step by step.", (4990, "EUR", 2000, "public")),
    ("Advanced Flask", "Blueprints, extensions and testing.", (12900, "EUR", 2000, "public")),
    ("Workplace safety", "Mandatory training for every employee.", None),
    ("Partner onboarding", "Selling and supporting our products.", (29900, "EUR", 2000, "partner")),
    ("Internal leadership program", "For managers and future managers.", (59000, "EUR", 2000, "internal")),
    ("Japanese business etiquette", "Meetings, gifts and emails in Japan.", (8000, "JPY", 1000, "public")),
    ("Data privacy essentials", "GDPR in practice.", (1990, "USD", 0, "public")),
    ("Welcome to the platform", "A free tour.", None),
]


def seed(app) -> None:
    if db.session.query(User.id).first() is not None:
        return
    for username, name, email, role, audience in USERS:
        db.session.add(User(username=username, name=name, email=email, role=role, audience=audience))
    courses = []
    for title, description, _offer in COURSES:
        course = Course(title=title, description=description)
        db.session.add(course)
        courses.append(course)
    db.session.commit()
    for course, (_title, _description, offer) in zip(courses, COURSES):
        if offer:
            amount, currency, vat, audience = offer
            save_offer(db.session, str(course.id), {"is_paid": True, "amount": amount, "currency": currency,
                                                    "vat_rate": vat, "audience": audience, "on_sale": True},
                       actor_id=None)
    if app.config.get("LMS_STRIPE_API_BASE") and app.config.get("DEMO_ENABLE_PAYMENTS", True):
        from . import SANDBOX_KEYS

        payment_settings.save(db.session, {
            "enabled": True, "publishable_key": SANDBOX_KEYS["publishable_key"],
            "secret_key": SANDBOX_KEYS["secret_key"], "webhook_secrets": [SANDBOX_KEYS["webhook_secret"]],
            "vouchers_enabled": True, "klarna_enabled": True, "klarna_minimum": 10000,
            "sepa_debit_enabled": True, "terms_url": app.config.get("DEMO_TERMS_URL"),
        }, actor_id=None)
