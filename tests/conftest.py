"""Shared fixtures: ``app``, ``db``, ``client``, ``host``, ``stripe_http`` (responses), ``signals``.

Tests run on SQLite, or on PostgreSQL when LMS_STRIPE_TEST_DATABASE_URL is set.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import responses
import sqlalchemy as sa

from lms_stripe_plugin import migrate, signals as plugin_signals
from lms_stripe_plugin.accounts import settings as payment_settings
from lms_stripe_plugin.core.models import Base

from .minimal_host import Lesson, Person, close_apps, create_host_app, db as host_db

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
DATABASE_URL = os.environ.get("LMS_STRIPE_TEST_DATABASE_URL")
ON_POSTGRES = bool(DATABASE_URL and DATABASE_URL.startswith("postgresql"))
STRIPE = "https://api.stripe.com"

KEYS = {"publishable_key": "pk_test_51Abcdefghijkl", "secret_key": "sk_test_51Abcdefghijkl",
        "webhook_secrets": ["whsec_testsecret123456"]}


#: Fields of the example objects whose generated values no real object can have, and the value Stripe gives
#: them in the common case: the example invoice is overpaid by more than it was paid (Stripe credits an
#: overpayment to the customer's balance).
_POSSIBLE = {"invoice": {"amount_overpaid": 0}}


def stripe_object(name: str, **changes) -> dict:
    """One of Stripe's example objects (tests/fixtures/stripe/NAME.json) with some fields changed."""
    obj = copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))
    obj.update(_POSSIBLE.get(name, {}))
    obj.update(changes)
    return obj


def without_labels(page: str) -> str:
    """A page's markup without the names its record tables give each cell for phones (``data-label``)."""
    return re.sub(r' data-label="[^"]*"', "", page)


def form_body(request) -> dict:
    """The form-encoded body the SDK sent, as {bracketed key: value}."""
    body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
    return {key: values[-1] if len(values) == 1 else values for key, values in parse_qs(body).items()}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    return DATABASE_URL or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"


@pytest.fixture(scope="session")
def _demo_schema(tmp_path_factory) -> Path:
    """A demo database with its tables and the plugin's migrations, nothing seeded: made once per session. Running
    the migrations on a new SQLite file takes most of a second, and most demo tests want a demo of their own."""
    from lms_stripe_plugin.demo import create_app
    from lms_stripe_plugin.demo.models import db as demo_db

    path = tmp_path_factory.mktemp("demo-schema") / "demo.sqlite"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "DEMO_SEED": False})
    with app.app_context():
        demo_db.session.remove()
        demo_db.engine.dispose()
    return path


@pytest.fixture
def new_demo_database(_demo_schema, tmp_path):
    """The URL of a new SQLite file holding the demo's tables, migrated and empty (``create_app`` seeds it)."""
    path = tmp_path / "demo.sqlite"
    shutil.copyfile(_demo_schema, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def _schema(database_url):
    """Create the host's tables and run the plugin's migrations once per test session."""
    app, _host = create_host_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        host_db.drop_all()
        Base.metadata.drop_all(host_db.engine)
        with host_db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS lms_stripe_alembic_version"))
        host_db.create_all()
        migrate.upgrade()
    return database_url


def _wipe(engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)] + ["host_seats", "host_people", "host_lessons"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(sa.text(f"DELETE FROM {table}"))


@pytest.fixture(autouse=True)
def _close_apps():
    yield
    close_apps()


@pytest.fixture
def app(_schema):
    app, host = create_host_app({"SQLALCHEMY_DATABASE_URI": _schema, "LMS_STRIPE_MAX_NETWORK_RETRIES": 0})
    app.config["TEST_HOST"] = host
    with app.app_context():
        _wipe(host_db.engine)
        yield app
        host_db.session.remove()


@pytest.fixture
def db(app):
    return host_db


@pytest.fixture
def host(app):
    return app.config["TEST_HOST"]


@pytest.fixture
def people(db):
    """Learners in each audience, a manager, an administrator, and a learner the host blocks."""
    rows = [
        Person(id="u1", email="lea@example.com", name="Léa", audience="public"),
        Person(id="u2", email="sam@example.com", name="Sam", audience="public"),
        Person(id="emp", email="emp@example.com", name="Emma Employee", audience="internal"),
        Person(id="par", email="par@example.com", name="Paul Partner", audience="partner"),
        Person(id="mgr", email="mgr@example.com", name="Max Manager", audience="internal", role="manager"),
        Person(id="adm", email="adm@example.com", name="Ada Admin", audience="internal", role="admin"),
        Person(id="blk", email="blk@example.com", name="Bob Blocked", audience="public", blocked=True),
    ]
    db.session.add_all(rows)
    db.session.commit()
    return {p.id: p for p in rows}


@pytest.fixture
def lessons(db):
    rows = [Lesson(id="c1", title="Python basics"), Lesson(id="c2", title="Flask advanced"),
            Lesson(id="c3", title="Free intro"), Lesson(id="c4", title="Japan trip")]
    db.session.add_all(rows)
    db.session.commit()
    return {lesson.id: lesson for lesson in rows}


@pytest.fixture
def client(app):
    return app.test_client()


def as_user(user_id: str) -> dict:
    return {"X-User": user_id}


@pytest.fixture
def stripe_http():
    """Stripe's HTTP API, stubbed: any call not registered by the test fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def configured(app, db):
    """Payments enabled with test keys."""
    payment_settings.save(db.session, {"enabled": True, **KEYS}, actor_id="adm")
    db.session.commit()
    return payment_settings.load(db.session)


@pytest.fixture
def priced(db, lessons):
    """c1: 49.90 EUR public, c2: 129.00 EUR partner, c3: free, c4: 8000 JPY internal."""
    from lms_stripe_plugin.shop.offers import save_offer

    for course_id, amount, currency, audience in (("c1", 4990, "EUR", "public"), ("c2", 12900, "EUR", "partner"),
                                                  ("c4", 8000, "JPY", "internal")):
        save_offer(db.session, course_id, {"is_paid": True, "amount": amount, "currency": currency,
                                           "vat_rate": 2000 if currency == "EUR" else 1000, "audience": audience,
                                           "on_sale": True}, actor_id="adm")
        db.session.commit()
    return lessons


@pytest.fixture
def signals():
    """Records every signal the plugin sends: {name: [kwargs, ...]}."""
    recorded: dict[str, list] = {}
    receivers = []
    for name in ("purchase_completed", "invoice_issued", "purchase_cancelled", "access_revoked", "access_restored",
                 "refund_failed",
                 "payment_failed", "free_enrollment_recorded"):
        def receiver(sender, _name=name, **kwargs):
            recorded.setdefault(_name, []).append(kwargs)
        getattr(plugin_signals, name).connect(receiver)
        receivers.append((name, receiver))
    yield recorded
    for name, receiver in receivers:
        getattr(plugin_signals, name).disconnect(receiver)
