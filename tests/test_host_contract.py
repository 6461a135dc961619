"""The host contract, driven from the minimal host: every signal and what the plugin answers."""
import re
from contextlib import contextmanager

import pytest
import responses
from blinker import signal
from markupsafe import Markup
from sqlalchemy import event, select
from werkzeug.datastructures import MultiDict

from lms_stripe_plugin.shop.enrollment import EnrollmentDecision
from lms_stripe_plugin.core.models import AuditEntry, CourseOffer, FreeEnrollment, Purchase

from .conftest import ON_POSTGRES, as_user


def send(app, name, **kwargs):
    """The plugin's one answer to a host signal (None when it has no opinion)."""
    answers = [value for receiver, value in signal(name).send(app, **kwargs)
               if receiver.__module__.startswith("lms_stripe_plugin")]
    assert len(answers) == 1, answers
    return answers[0]


def pricing_form(**fields):
    base = {"paid": "on", "price": "49.90", "currency": "EUR", "vat_rate": "20", "audience": "public", "on_sale": "on"}
    base.update(fields)
    return MultiDict({f"lms_stripe-{k}": v for k, v in base.items() if v is not None})


# -- lms.course.settings_form / settings_saved -----------------------------------------------------

def test_settings_form_shows_the_pricing_section_with_defaults(app, lessons, people):
    with app.test_request_context(headers=as_user("adm")):
        html = send(app, "lms.course.settings_form", course=lessons["c1"])
    assert isinstance(html, Markup)
    assert 'name="lms_stripe-price"' in html and 'name="lms_stripe-audience"' in html
    assert 'value="EUR"' in html and 'value="20"' in html


def test_saving_a_price_persists_the_offer_and_shows_the_breakdown(app, db, lessons, people):
    with app.test_request_context(headers=as_user("adm")):
        assert send(app, "lms.course.settings_saved", course=lessons["c1"], form=pricing_form(price="1,234.50")) is None
        html = send(app, "lms.course.settings_form", course=lessons["c1"])
    offer = db.session.scalar(select(CourseOffer).where(CourseOffer.course_id == "c1"))
    assert (offer.is_paid, offer.amount, offer.currency, offer.vat_rate, offer.audience, offer.on_sale) == \
        (True, 123450, "EUR", 2000, "public", True)
    text = re.sub(r"\s+", " ", str(html))
    assert "€1,028.75" in text and "€205.75" in text and "€1,234.50" in text  # net, VAT, gross
    assert "€1,215.73" in text  # after the card fee: 1.5 % + 0.25 EUR
    assert "€1,173.61" in text  # after Klarna: 4.9 % + 0.40 EUR
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "course_pricing_changed")).actor_id == "adm"


def test_zero_decimal_currency_price(app, db, lessons, people):
    with app.test_request_context(headers=as_user("adm")):
        assert send(app, "lms.course.settings_saved", course=lessons["c4"],
                    form=pricing_form(price="8000", currency="jpy", vat_rate="10")) is None
    offer = db.session.scalar(select(CourseOffer).where(CourseOffer.course_id == "c4"))
    assert (offer.amount, offer.currency) == (8000, "JPY")


@pytest.mark.parametrize("fields, field, text", [
    ({"price": ""}, "price", "Required"),
    ({"price": "abc"}, "price", "49.90"),
    ({"price": "-3"}, "price", "49.90"),
    ({"price": "0.10"}, "price", "minimum"),
    ({"price": "49.9012"}, "price", "at most 2 decimals"),
    ({"price": "1000000000"}, "price", "maximum"),
    ({"price": "80.5", "currency": "JPY"}, "price", "no decimals"),
    ({"currency": "ZZZ"}, "currency", "three-letter"),
    ({"currency": ""}, "currency", "three-letter"),
    ({"vat_rate": "abc"}, "vat_rate", "between 0 and 100"),
    ({"vat_rate": "150"}, "vat_rate", "between 0 and 100"),
    ({"vat_rate": None}, "vat_rate", "Required"),
    ({"audience": "everyone"}, "audience", "internal, partner or public"),
    ({"on_sale": "perhaps"}, "on_sale", "Tick"),
    ({"paid": "maybe"}, "paid", "Tick"),
    ({"price": "x" * 500}, "price", "At most"),
])
def test_bad_pricing_comes_back_as_field_errors_and_nothing_is_saved(app, db, lessons, people, fields, field, text):
    with app.test_request_context(headers=as_user("adm")):
        errors = send(app, "lms.course.settings_saved", course=lessons["c1"], form=pricing_form(**fields))
        html = send(app, "lms.course.settings_form", course=lessons["c1"], form=pricing_form(**fields), errors=errors)
    key = f"lms_stripe-{field}"
    assert key in errors and text in errors[key]
    assert f'id="{key}-error"' in html
    assert db.session.scalar(select(CourseOffer)) is None


@pytest.mark.parametrize("locale, typed, saved, error", [
    ("fr", "1 234,50", 123450, None),
    ("fr", "1.234,50", 123450, None),
    ("fr", "19,999", None, "au plus 2 décimales"),
    ("fr", "1.234", None, "de deux façons"),
    ("en", "1,234.50", 123450, None),
    ("en", "19,999", 1999900, None),
    ("en", "0,500", None, "Write the amount like 49.90"),
])
def test_prices_are_read_in_the_administrators_locale(app, db, host, lessons, people, locale, typed, saved, error):
    host.locale = locale
    with app.test_request_context(headers=as_user("adm")):
        errors = send(app, "lms.course.settings_saved", course=lessons["c1"], form=pricing_form(price=typed))
    offer = db.session.scalar(select(CourseOffer))
    if error is None:
        assert errors is None and offer.amount == saved
    else:
        assert error in errors["lms_stripe-price"] and offer is None


def test_unticking_paid_makes_the_course_free(app, db, priced, people):
    with app.test_request_context(headers=as_user("adm")):
        assert send(app, "lms.course.settings_saved", course=priced["c1"], form=MultiDict({})) is None
    assert db.session.scalar(select(CourseOffer).where(CourseOffer.course_id == "c1")).is_paid is False


def test_pricing_preview_uses_the_same_rules(client, people):
    ok = client.get("/payments/admin/pricing-preview?price=49.90&currency=EUR&vat_rate=20", headers=as_user("adm"))
    assert ok.status_code == 200 and ok.json["net"] == 4158 and ok.json["vat"] == 832
    bad = client.get("/payments/admin/pricing-preview?price=4x&currency=EUR&vat_rate=20", headers=as_user("adm"))
    assert bad.status_code == 400 and "49.90" in bad.json["error"]["message"]
    assert client.get("/payments/admin/pricing-preview?price=1", headers=as_user("u1")).status_code == 403


# -- lms.catalog.rendering / filtering -------------------------------------------------------------

@pytest.mark.parametrize("locale, c1, c4", [("fr", "49,90\u00a0€", "8\u202f000\u00a0JPY"), ("en", "€49.90", "¥8,000")])
def test_catalog_labels_follow_the_host_locale(app, host, priced, people, locale, c1, c4):
    host.locale = locale
    with app.test_request_context(headers=as_user("emp")):
        deco = send(app, "lms.catalog.rendering", courses=list(priced.values()), user=people["emp"])
    assert c1 in deco.labels["c1"]
    assert c4.replace("JPY", "") in deco.labels["c4"] or c4 in deco.labels["c4"]
    assert ("Gratuit" if locale == "fr" else "Free") in deco.labels["c3"]
    assert 'name="price_max"' in deco.filter_widget


def test_catalog_marks_purchased_courses(app, db, priced, people):
    db.session.add(Purchase(user_id="par", course_id="c1", status="paid", amount=4990, currency="EUR"))
    db.session.commit()
    with app.test_request_context():
        deco = send(app, "lms.catalog.rendering", courses=list(priced.values()), user=people["par"])
    assert "Purchased" in deco.labels["c1"] and "€129.00" in deco.labels["c2"]


@pytest.mark.parametrize("args, expected", [
    ({}, ["c1", "c2", "c3", "c4"]),
    ({"price": "free"}, ["c3"]),
    ({"price": "paid"}, ["c1", "c2", "c4"]),
    ({"price_max": "50"}, ["c1", "c3"]),
    ({"price_max": "129"}, ["c1", "c2", "c3"]),
    ({"price": "paid", "price_max": "49.90"}, ["c1"]),
    ({"price_max": "abc"}, ["c1", "c2", "c3", "c4"]),
    ({"price": "nonsense"}, ["c1", "c2", "c3", "c4"]),
])
def test_price_filter(app, priced, args, expected):
    with app.test_request_context():
        kept = send(app, "lms.catalog.filtering", courses=list(priced.values()), args=MultiDict(args))
    assert [c.id for c in kept] == expected


@contextmanager
def sql_statements(db):
    """The SQL statements run inside the block."""
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


def _render(app, courses, user):
    with app.test_request_context():
        return send(app, "lms.catalog.rendering", courses=courses, user=user)


def test_catalog_rendering_costs_at_most_two_queries_whatever_the_size(app, db, priced, people):
    from .minimal_host import Lesson

    db.session.add_all(Lesson(id=f"m{i}", title=f"Course {i}") for i in range(300))
    db.session.commit()
    many = db.session.query(Lesson).all()  # loaded by the host before it sends the signal
    user = people["par"]
    assert user.email  # loaded too
    with sql_statements(db) as statements:
        deco = _render(app, many, user)
    assert len(statements) <= 2, statements
    assert len(many) == 304
    assert all("Free" in deco.labels[c.id] for c in many if c.id.startswith("m")) and len(deco.labels) == 304
    assert "€49.90" in deco.labels["c1"] and "€129.00" in deco.labels["c2"] and "Free" in deco.labels["c3"]


def test_catalog_prices_are_read_once_then_only_the_users_purchases(app, db, priced, people):
    courses = list(priced.values())
    _render(app, courses, people["u1"])  # reads the offers
    with sql_statements(db) as signed_in:
        deco = _render(app, courses, people["u1"])
    with sql_statements(db) as anonymous:
        _render(app, courses, None)
    assert len(signed_in) == 1 and "lms_stripe_settings" in signed_in[0] and "lms_stripe_purchases" in signed_in[0]
    assert "lms_stripe_course_offers" not in " ".join(signed_in + anonymous)
    assert len(anonymous) == 1 and "lms_stripe_settings" in anonymous[0]
    assert "€49.90" in deco.labels["c1"]


def test_a_price_change_shows_at_once(app, db, priced, people):
    from lms_stripe_plugin.shop.offers import save_offer

    courses = list(priced.values())
    assert "€49.90" in _render(app, courses, people["emp"]).labels["c1"]
    save_offer(db.session, "c1", {"is_paid": True, "amount": 5900, "currency": "EUR", "vat_rate": 2000,
                                  "audience": "public", "on_sale": True}, actor_id="adm")
    db.session.commit()
    save_offer(db.session, "c2", {"is_paid": False}, actor_id="adm")
    db.session.commit()
    with sql_statements(db) as statements:
        labels = _render(app, courses, people["emp"]).labels
    assert "€59.00" in labels["c1"] and "Free" in labels["c2"] and "¥8,000" in labels["c4"]
    plugin = [statement for statement in statements if "lms_stripe_" in statement]  # the host reloads its own
    assert len(plugin) == 2, "\n".join(plugin)


def test_a_price_changed_by_another_process_shows_at_once(app, db, priced, people):
    """Two apps on one database stand for two worker processes."""
    from lms_stripe_plugin.shop.offers import save_offer

    from .minimal_host import create_host_app

    courses = list(priced.values())
    assert "€49.90" in _render(app, courses, people["u1"]).labels["c1"]
    other, _host = create_host_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"]})
    with other.app_context():
        save_offer(db.session, "c1", {"is_paid": True, "amount": 3900, "currency": "EUR", "vat_rate": 2000,
                                      "audience": "public", "on_sale": True}, actor_id="adm")
        db.session.commit()
        db.session.remove()
    db.session.expire_all()
    assert "€39.00" in _render(app, courses, people["u1"]).labels["c1"]


def test_a_price_change_without_a_settings_row_creates_it(app, db, lessons):
    from lms_stripe_plugin.core.models import Settings
    from lms_stripe_plugin.shop.offers import save_offer

    assert db.session.get(Settings, 1) is None
    save_offer(db.session, "c1", {"is_paid": True, "amount": 4990, "currency": "EUR", "vat_rate": 2000,
                                  "audience": "public", "on_sale": True}, actor_id="adm")
    db.session.commit()
    first = db.session.get(Settings, 1).catalog_revision
    save_offer(db.session, "c1", {"is_paid": False}, actor_id="adm")
    db.session.commit()
    assert first != 0 and db.session.get(Settings, 1).catalog_revision not in (0, first)
    assert "Free" in _render(app, list(lessons.values()), None).labels["c1"]


def test_labels_of_unhashable_courses_are_found_by_id(app, host, priced, people):
    """A host may send its courses as plain dicts: their labels are then looked up by id only."""
    host.course_id = lambda course: course["id"]
    deco = _render(app, [{"id": "c1"}, {"id": "c3"}], people["u1"])
    assert "€49.90" in deco.labels["c1"] and "Free" in deco.labels["c3"] and dict(deco.course_labels) == {}


def test_labels_when_the_host_gives_ids_that_are_not_strings(app, host, priced, people):
    class Ident:
        def __init__(self, value):
            self.value = value

        def __str__(self):
            return self.value

    host.course_id = lambda course: Ident(course.id)
    deco = _render(app, list(priced.values()), people["u1"])
    assert "€49.90" in deco.labels["c1"] and "€49.90" in deco.course_labels[priced["c1"]]
    with app.test_request_context("/catalog?price=paid"):
        kept = send(app, "lms.catalog.filtering", courses=list(priced.values()), args=MultiDict({"price": "paid"}))
    assert [c.id for c in kept] == ["c1", "c2", "c4"]


def test_course_labels_find_another_object_for_the_same_course(app, priced, people):
    from .minimal_host import Lesson

    deco = _render(app, list(priced.values()), people["u1"])
    copy = Lesson(id="c1", title="Python basics")  # the same course, loaded again by the host
    assert copy is not priced["c1"] and deco.course_labels[copy] == deco.labels["c1"]


def test_a_hosts_override_of_a_fragment_gets_the_hosts_context(app, priced, people, configured):
    from jinja2 import ChoiceLoader, DictLoader

    app.context_processor(lambda: {"school_name": "École Test"})
    app.jinja_loader = ChoiceLoader([
        DictLoader({"lms_stripe/course_detail.html": "<div>{{ school_name }} {{ money(4990, 'EUR') }}</div>"}),
        app.jinja_loader])
    app.jinja_env.cache.clear()
    with app.test_request_context("/courses/c1"):
        detail = send(app, "lms.course.detail_rendering", course=priced["c1"], user=people["u1"])
    assert detail == "<div>École Test €49.90</div>"


def test_the_catalog_does_not_flush_the_hosts_pending_changes(app, db, priced, people):
    """A host re-rendering its page with an invalid object pending must not get its error from the plugin."""
    from .minimal_host import Lesson

    user, courses = people["u1"], list(priced.values())
    for _round in ("offers read", "offers kept"):
        assert user.email and all(course.title for course in courses)  # loaded, as a host's page has them
        db.session.add(Lesson(id="c1", title="A duplicate the host has not saved"))
        assert "€49.90" in _render(app, courses, user).labels["c1"]
        db.session.rollback()


def test_labels_take_the_hosts_own_course_ids():
    from lms_stripe_plugin.shop.catalog import CatalogLabels

    labels = CatalogLabels({"7": Markup("<b>7 €</b>"), "8": Markup("<i>Free</i>")})
    assert labels[7] == labels["7"] == labels.get(7, "") == labels.get("7") == Markup("<b>7 €</b>")
    assert labels[8] == labels.get("8", "") == Markup("<i>Free</i>")
    assert 7 in labels and "8" in labels and 9 not in labels
    assert labels[9] == labels["9"] == "" and labels.get(9, "?") == "?" and labels.get("9") is None
    assert 9 not in labels  # a lookup does not add the course


def test_labels_cover_exactly_the_courses_of_the_page(app, priced, people):
    """Prices of courses the host does not show (another audience's, say) are not handed to it."""
    deco = _render(app, [priced["c1"], priced["c3"]], people["u1"])
    assert set(deco.labels) == {"c1", "c3"}
    assert "€49.90" in deco.labels["c1"] and "Free" in deco.labels["c3"] and deco.labels["c2"] == ""
    assert deco.course_labels == {priced["c1"]: deco.labels["c1"], priced["c3"]: deco.labels["c3"]}


def test_purchased_shows_for_its_buyer_only_once_the_prices_are_kept(app, db, priced, people):
    courses = list(priced.values())
    _render(app, courses, people["emp"])  # the offers are now kept
    db.session.add(Purchase(user_id="par", course_id="c1", status="paid", amount=4990, currency="EUR"))
    db.session.add(Purchase(user_id="par", course_id="c2", status="open", amount=12900, currency="EUR"))
    db.session.commit()
    assert people["par"].email and people["emp"].email
    with sql_statements(db) as statements:
        decoration = _render(app, courses, people["par"])
    mine, theirs = decoration.labels, _render(app, courses, people["emp"]).labels
    assert "lms_stripe_course_offers" not in " ".join(statements)
    assert "Purchased" in mine["c1"] and "€129.00" in mine["c2"]  # an open checkout is no purchase yet
    assert decoration.course_labels[priced["c1"]] == mine["c1"]
    assert "€49.90" in theirs["c1"] and "Purchased" not in theirs["c1"]


def test_prices_written_around_the_plugin_show_after_the_snapshot_age(app, db, priced, people, monkeypatch):
    """A script that updates the offers table directly does not change the revision: the snapshot's age
    is the backstop."""
    from sqlalchemy import text

    from lms_stripe_plugin.shop import catalog

    courses = list(priced.values())
    assert "€49.90" in _render(app, courses, None).labels["c1"]
    db.session.execute(text("UPDATE lms_stripe_course_offers SET amount = 4500 WHERE course_id = 'c1'"))
    db.session.commit()
    assert "€49.90" in _render(app, courses, None).labels["c1"]  # kept: the revision did not change
    monkeypatch.setattr(catalog, "SNAPSHOT_SECONDS", 0)
    assert "€45.00" in _render(app, courses, None).labels["c1"]


def test_the_filter_form_follows_the_query_string_and_the_locale(app, host, priced, people):
    def widget(query):
        with app.test_request_context("/catalog" + query):
            return send(app, "lms.catalog.rendering", courses=list(priced.values()), user=None).filter_widget

    first = widget("?price_max=20&topic=python")
    assert 'value="20"' in first and 'name="topic" value="python"' in first
    free = widget("?price=free")
    assert 'value="free" selected' in free and 'value="20"' not in free and "topic" not in free
    host.locale = "fr"
    assert "Cours gratuits" in widget("?price=free")
    assert widget("?price_max=abc").count('role="alert"') == 1


def test_the_plugins_filter_form_is_kept_and_holds_nothing_personal(app, client, priced, people):
    def form(user):
        with app.test_request_context("/catalog?price_max=20", headers=as_user(user)):
            return send(app, "lms.catalog.rendering", courses=list(priced.values()), user=people[user]).filter_widget

    first = form("u1")
    assert form("u2") is first and "csrf" not in first and 'value="20"' in first
    assert len(app.extensions["lms_stripe"].filter_forms) == 1


def test_a_hosts_override_of_the_filter_form_is_rendered_every_time(app, priced, people):
    """An override may show per-user things (a token, a name): it is never kept and shared."""
    from jinja2 import ChoiceLoader, DictLoader

    renders = iter(range(1, 100))
    app.jinja_env.globals["personal"] = lambda: next(renders)  # stands for a token or a user's name
    app.jinja_loader = ChoiceLoader([
        DictLoader({"lms_stripe/catalog_filter.html": "<form>{{ personal() }}</form>"}), app.jinja_loader])
    app.jinja_env.cache.clear()
    forms = []
    for _round in range(2):
        with app.test_request_context("/catalog"):
            forms.append(send(app, "lms.catalog.rendering", courses=list(priced.values()), user=None).filter_widget)
    assert forms == ["<form>1</form>", "<form>2</form>"]
    assert app.extensions["lms_stripe"].filter_forms == {}


def test_the_filter_form_is_not_kept_while_templates_reload(app, priced):
    app.jinja_env.auto_reload = True
    with app.test_request_context("/catalog"):
        send(app, "lms.catalog.rendering", courses=list(priced.values()), user=None)
    assert app.extensions["lms_stripe"].filter_forms == {}


def test_fragments_do_not_run_the_hosts_context_processors_again(app, priced, people, configured):
    """The host's page runs its context processors once; the plugin's fragments inside it must not repeat
    them (a host's processor may query the database)."""
    calls = []
    app.context_processor(lambda: calls.append(1) or {})
    with app.test_request_context("/catalog?price_max=50"):
        deco = send(app, "lms.catalog.rendering", courses=list(priced.values()), user=people["u1"])
        detail = send(app, "lms.course.detail_rendering", course=priced["c1"], user=people["u1"])
    assert calls == [] and 'value="50"' in deco.filter_widget and "csrf_token" in detail


@pytest.mark.skipif(not ON_POSTGRES, reason="two transactions racing to create the settings row need PostgreSQL")
def test_two_first_price_changes_at_once_both_succeed(app, db, lessons):
    """Two admins price their first courses at the same moment: both offers are saved, one settings row."""
    import threading
    import time

    from sqlalchemy.orm import Session

    from lms_stripe_plugin.shop import catalog
    from lms_stripe_plugin.core.models import Settings

    first, second = Session(db.engine), Session(db.engine)
    catalog.raise_revision(first)  # creates the row, not committed yet
    failures = []

    def other_admin():
        try:
            catalog.raise_revision(second)  # finds no row, then waits on the first insert, then updates
            second.commit()
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(err)

    thread = threading.Thread(target=other_admin)
    thread.start()
    time.sleep(0.5)
    first.commit()
    thread.join(10)
    first.close()
    second.close()
    assert failures == [] and not thread.is_alive()
    db.session.expire_all()
    assert db.session.query(Settings).count() == 1 and db.session.get(Settings, 1).catalog_revision != 0


# -- lms.course.detail_rendering ---------------------------------------------------------------------

def _detail(app, course, user):
    with app.test_request_context():
        return re.search(r'data-status="([a-z_]+)"', send(app, "lms.course.detail_rendering", course=course, user=user)).group(1)


def test_detail_states(app, db, host, priced, people, configured):
    assert _detail(app, priced["c3"], people["u1"]) == "free"
    assert _detail(app, priced["c1"], None) == "sign_in"
    assert _detail(app, priced["c1"], people["u1"]) == "buy"
    assert _detail(app, priced["c2"], people["u1"]) == "not_for_you"  # partner course
    assert _detail(app, priced["c2"], people["par"]) == "buy"
    assert _detail(app, priced["c2"], people["emp"]) == "buy"  # internal users reach partner courses
    assert _detail(app, priced["c4"], people["par"]) == "not_for_you"  # internal course
    assert _detail(app, priced["c1"], people["blk"]) == "not_for_you"  # host perimeter
    host.enroll(people["u2"], priced["c1"])
    db.session.commit()
    assert _detail(app, priced["c1"], people["u2"]) == "enrolled"
    db.session.add(Purchase(user_id="u1", course_id="c1", status="processing", amount=4990, currency="EUR"))
    db.session.commit()
    assert _detail(app, priced["c1"], people["u1"]) == "pending"


def test_detail_shows_the_price_and_a_csrf_protected_buy_form(app, priced, people, configured):
    with app.test_request_context():
        html = send(app, "lms.course.detail_rendering", course=priced["c1"], user=people["u1"])
    assert "€49.90" in html and 'action="/payments/checkout/c1"' in html and 'name="csrf_token"' in html


def test_a_course_the_learner_cannot_buy_shows_no_price_only_why(app, priced, people, configured):
    with app.test_request_context():
        page = str(send(app, "lms.course.detail_rendering", course=priced["c2"], user=people["u1"]))
    assert "This course is not available for purchase with your account." in page
    assert "129" not in page and "incl. VAT" not in page


def test_detail_when_payments_are_off_or_not_on_sale(app, db, priced, people):
    assert _detail(app, priced["c1"], people["u1"]) == "unavailable"
    db.session.scalar(select(CourseOffer).where(CourseOffer.course_id == "c1")).on_sale = False
    db.session.commit()
    from lms_stripe_plugin.accounts import settings as payment_settings
    from .conftest import KEYS

    payment_settings.save(db.session, {"enabled": True, **KEYS}, actor_id="adm")
    db.session.commit()
    assert _detail(app, priced["c1"], people["u1"]) == "not_on_sale"


# -- lms.enrollment.requested ------------------------------------------------------------------------

def test_self_enrollment_in_a_paid_course_is_refused_with_the_payment_page(app, priced, people):
    with app.test_request_context():
        decision = send(app, "lms.enrollment.requested", course=priced["c1"], user=people["u1"],
                        actor=people["u1"], source="self")
    assert isinstance(decision, EnrollmentDecision)
    assert not decision.allowed and decision.reason == "payment_required"
    assert decision.checkout_url == "/payments/courses/c1"


@pytest.mark.parametrize("course_id, user_id, on_sale, reason, message", [
    ("c2", "u1", True, "not_for_you", "This course is not available for purchase with your account."),  # partners'
    ("c1", "blk", True, "not_for_you", "This course is not available for purchase with your account."),
    ("c1", "u1", False, "not_on_sale", "This course is not on sale."),
])
def test_a_course_the_learner_cannot_buy_is_refused_with_that_one_reason(app, db, priced, people, course_id, user_id,
                                                                        on_sale, reason, message):
    db.session.scalar(select(CourseOffer).where(CourseOffer.course_id == course_id)).on_sale = on_sale
    db.session.commit()
    with app.test_request_context():
        decision = send(app, "lms.enrollment.requested", course=priced[course_id], user=people[user_id],
                        actor=people[user_id], source="self")
    assert (decision.allowed, decision.reason, decision.message, decision.checkout_url) == \
        (False, reason, message, None)


def test_free_courses_get_no_opinion(app, priced, people):
    with app.test_request_context():
        answers = [v for _r, v in signal("lms.enrollment.requested").send(
            app, course=priced["c3"], user=people["u1"], actor=people["u1"], source="self")]
    assert answers == [None]


def test_a_paid_learner_may_enroll(app, db, priced, people):
    db.session.add(Purchase(user_id="u1", course_id="c1", status="paid", amount=4990, currency="EUR"))
    db.session.commit()
    with app.test_request_context():
        decision = send(app, "lms.enrollment.requested", course=priced["c1"], user=people["u1"],
                        actor=people["u1"], source="self")
    assert decision.allowed


@pytest.mark.parametrize("actor", ["mgr", "adm"])
def test_backoffice_enrollment_is_free_recorded_and_calls_no_stripe(app, db, priced, people, signals, actor):
    with responses.RequestsMock() as stripe_http, app.test_request_context():
        decision = send(app, "lms.enrollment.requested", course=priced["c1"], user=people["u1"],
                        actor=people[actor], source="backoffice")
        assert len(stripe_http.calls) == 0
        assert "free_enrollment_recorded" not in signals  # not before the host's commit
        db.session.commit()  # the host enrolls, then commits its transaction and the plugin's rows
    assert decision.allowed and decision.reason == "free_enrollment"
    row = db.session.scalar(select(FreeEnrollment))
    assert (row.user_id, row.course_id, row.actor_id) == ("u1", "c1", actor)
    assert db.session.scalar(select(Purchase)) is None
    assert signals["free_enrollment_recorded"][0]["enrollment"].id == row.id
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "free_enrollment")).actor_id == actor


@pytest.mark.parametrize("actor", ["u2", None])
def test_backoffice_enrollment_by_someone_without_the_right_is_refused(app, db, priced, people, actor):
    with app.test_request_context():
        decision = send(app, "lms.enrollment.requested", course=priced["c1"], user=people["u1"],
                        actor=people.get(actor), source="backoffice")
    assert not decision.allowed and decision.reason == "not_allowed"
    assert db.session.scalar(select(FreeEnrollment)) is None


def test_the_answers_labels_as_one_mapping_for_the_template(app, priced, people):
    """`course_labels` gives the template one lookup per course: the plugin's own mapping when it is the only
    answer; each course's labels joined when another receiver answers too; nothing to show without answers."""
    from markupsafe import Markup

    from lms_stripe_plugin import course_labels

    deco = _render(app, list(priced.values()), people["u1"])
    assert course_labels([deco]) is deco.course_labels
    assert course_labels([None, "another receiver's answer", deco]) is deco.course_labels
    other = type("Other", (), {"course_labels": {priced["c1"]: Markup("<b>New</b>")}})()
    joined = course_labels([deco, other])
    assert joined and joined[priced["c1"]] == deco.labels["c1"] + Markup("<b>New</b>")
    assert joined[priced["c3"]] == deco.labels["c3"]  # a course the other answer has no label for
    assert not course_labels([]) and not course_labels([object()])
    template = app.jinja_env.from_string(
        "{% for c in courses %}[{% if labels %}{{ labels[c] }}{% endif %}]{% endfor %}")
    assert template.render(courses=[priced["c1"]], labels=course_labels([])) == "[]"
    assert template.render(courses=[priced["c1"]], labels=course_labels([deco])) == f"[{deco.labels['c1']}]"
