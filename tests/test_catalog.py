"""The catalog's price filter and labels as a host's catalog page uses them: filtering then rendering the
courses kept, in one request."""
from contextlib import contextmanager

import pytest
from blinker import signal
from sqlalchemy import event
from werkzeug.datastructures import MultiDict

from lms_stripe_plugin.core.models import Purchase
from lms_stripe_plugin.shop import catalog
from lms_stripe_plugin.shop.offers import save_offer

from .conftest import as_user


def send(app, name, **kwargs):
    """The plugin's one answer to a host signal."""
    answers = [value for receiver, value in signal(name).send(app, **kwargs)
               if receiver.__module__.startswith("lms_stripe_plugin")]
    assert len(answers) == 1, answers
    return answers[0]


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


@contextmanager
def counting_course_ids(host):
    """The courses the plugin asks the host the id of, in the block."""
    asked, course_id = [], host.course_id

    def counted(course):
        asked.append(course)
        return course_id(course)

    host.course_id = counted
    try:
        yield asked
    finally:
        host.course_id = course_id


def _filter_then_render(app, courses, args, user=None):
    """A host's catalog page: the courses the filter keeps, and their decoration."""
    kept = send(app, "lms.catalog.filtering", courses=courses, args=MultiDict(args))
    return kept, send(app, "lms.catalog.rendering", courses=kept, user=user)


def test_rendering_the_courses_the_filter_kept_asks_the_host_for_no_id_again(app, host, priced, people):
    with app.test_request_context(headers=as_user("u1")), counting_course_ids(host) as asked:
        kept, deco = _filter_then_render(app, list(priced.values()), {"price": "paid"}, people["u1"])
    assert [c.id for c in kept] == ["c1", "c2", "c4"]
    assert sorted(c.id for c in asked) == ["c1", "c2", "c3", "c4"]  # once each, by the filter
    assert "€49.90" in deco.labels["c1"] and "€49.90" in deco.course_labels[priced["c1"]]
    assert set(deco.labels) == {"c1", "c2", "c4"}


def test_rendering_courses_the_filter_did_not_read_asks_the_host_for_their_ids(app, host, priced, people):
    with app.test_request_context(), counting_course_ids(host) as asked:
        send(app, "lms.catalog.filtering", courses=[priced["c1"], priced["c2"]], args=MultiDict({"price": "paid"}))
        deco = send(app, "lms.catalog.rendering", courses=[priced["c1"], priced["c3"]], user=people["u1"])
    assert "€49.90" in deco.labels["c1"] and "Free" in deco.labels["c3"] and set(deco.labels) == {"c1", "c3"}
    assert deco.course_labels[priced["c3"]] == deco.labels["c3"]
    assert [c.id for c in asked] == ["c1", "c2", "c1", "c3"]


def test_the_filtered_page_costs_one_query(app, db, priced, people):
    with app.test_request_context(headers=as_user("u1")):
        _filter_then_render(app, list(priced.values()), {"price_max": "50"}, people["u1"])  # reads the offers
    with app.test_request_context(headers=as_user("u1")), sql_statements(db) as statements:
        kept, deco = _filter_then_render(app, list(priced.values()), {"price_max": "50"}, people["u1"])
    assert [c.id for c in kept] == ["c1", "c3"] and "€49.90" in deco.labels["c1"]
    assert len(statements) == 1
    assert all(table in statements[0] for table in ("lms_stripe_settings", "lms_stripe_purchases",
                                                    "lms_stripe_free_enrollments"))


def test_the_price_filter_follows_a_price_change(app, db, priced):
    def kept(args):
        with app.test_request_context():
            courses = send(app, "lms.catalog.filtering", courses=list(priced.values()), args=MultiDict(args))
        return [c.id for c in courses]

    assert kept({"price_max": "50"}) == ["c1", "c3"] and kept({"price": "free"}) == ["c3"]
    save_offer(db.session, "c1", {"is_paid": True, "amount": 5900, "currency": "EUR", "vat_rate": 2000,
                                  "audience": "public", "on_sale": True}, actor_id="adm")
    db.session.commit()
    save_offer(db.session, "c2", {"is_paid": False}, actor_id="adm")
    db.session.commit()
    assert kept({"price_max": "50"}) == ["c2", "c3"] and kept({"price": "free"}) == ["c2", "c3"]


@pytest.mark.parametrize("args, expected", [
    ({"price_max": "0.01"}, ["c3"]),
    ({"price_max": "49.89"}, ["c3"]),
    ({"price_max": "49.90"}, ["c1", "c3"]),
    ({"price_max": "8000", "price": "paid"}, ["c1", "c2"]),  # euros: the yen course is not in the currency
    ({"price": "paid", "price_max": "0"}, []),
    ({"price": "free", "price_max": "500"}, ["c3"]),
])
def test_price_filter_bounds(app, priced, args, expected):
    for _round in ("worked out", "kept"):
        with app.test_request_context():
            kept = send(app, "lms.catalog.filtering", courses=list(priced.values()), args=MultiDict(args))
        assert [c.id for c in kept] == expected


def test_the_filters_a_catalog_keeps_are_bounded(app, priced):
    """``price_max`` is whatever a visitor types: the courses each filter keeps are not kept for all."""
    for cents in range(1000, 6000, 25):
        with app.test_request_context():
            kept = send(app, "lms.catalog.filtering", courses=list(priced.values()),
                        args=MultiDict({"price_max": f"{cents / 100:.2f}"}))
        assert [c.id for c in kept] == (["c1", "c3"] if cents >= 4990 else ["c3"])
    assert 0 < len(app.extensions["lms_stripe"].catalog_snapshots[""].selections) <= catalog._MAX_SELECTIONS


def test_unhashable_courses_are_filtered_and_labelled_by_id(app, host, priced, people):
    host.course_id = lambda course: course["id"]
    courses = [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}, {"id": "c4"}]
    with app.test_request_context(headers=as_user("par")):
        kept, deco = _filter_then_render(app, courses, {"price_max": "200"}, people["par"])
    assert kept == [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}]
    assert "€129.00" in deco.labels["c2"] and "Free" in deco.labels["c3"] and dict(deco.course_labels) == {}


def test_courses_may_come_in_any_iterable(app, priced, people):
    with app.test_request_context():
        kept = send(app, "lms.catalog.filtering", courses=iter(priced.values()), args=MultiDict({"price": "paid"}))
        deco = send(app, "lms.catalog.rendering", courses=(c for c in priced.values()), user=people["u1"])
    assert [c.id for c in kept] == ["c1", "c2", "c4"]
    assert set(deco.labels) == {"c1", "c2", "c3", "c4"}
    assert deco.course_labels[priced["c4"]] == deco.labels["c4"] and "Free" in deco.course_labels[priced["c3"]]


def test_two_apps_keep_their_own_filters(app, db, priced):
    """Two apps on one database stand for two worker processes: a price changed in one is filtered on in the
    other at once."""
    from .minimal_host import create_host_app

    def kept(on):
        with on.test_request_context():
            courses = send(on, "lms.catalog.filtering", courses=list(priced.values()),
                           args=MultiDict({"price_max": "40"}))
        return [c.id for c in courses]

    other, _host = create_host_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"]})
    assert kept(app) == ["c3"]
    with other.app_context():
        assert kept(other) == ["c3"]
        save_offer(db.session, "c1", {"is_paid": True, "amount": 3900, "currency": "EUR", "vat_rate": 2000,
                                      "audience": "public", "on_sale": True}, actor_id="adm")
        db.session.commit()
        db.session.remove()
    db.session.expire_all()
    assert kept(app) == ["c1", "c3"]


def test_purchases_read_by_the_catalog_are_the_committed_ones_of_this_user(app, db, priced, people):
    from lms_stripe_plugin.core.models import Purchase

    with app.test_request_context():
        send(app, "lms.catalog.rendering", courses=list(priced.values()), user=people["u2"])  # offers kept
    db.session.add_all([Purchase(user_id="emp", course_id="c1", status="paid", amount=4990, currency="EUR"),
                        Purchase(user_id="emp", course_id="c4", status="cancelled", amount=8000, currency="JPY"),
                        Purchase(user_id="par", course_id="c2", status="paid", amount=12900, currency="EUR")])
    db.session.commit()
    with app.test_request_context():
        mine = send(app, "lms.catalog.rendering", courses=list(priced.values()), user=people["emp"]).labels
    assert "Purchased" in mine["c1"] and "¥8,000" in mine["c4"] and "€129.00" in mine["c2"]



def test_the_labels_by_id_are_made_only_when_read(app, priced, people, monkeypatch):
    """A template that looks its courses up by object, as most do, never pays for the labels by id."""
    made = []

    class Counted(catalog.CatalogLabels):
        __slots__ = ()

        def __init__(self, *args):
            made.append(self)
            super().__init__(*args)

    monkeypatch.setattr(catalog, "CatalogLabels", Counted)
    with app.test_request_context():
        deco = send(app, "lms.catalog.rendering", courses=list(priced.values()), user=people["u1"])
    assert "€49.90" in deco.course_labels[priced["c1"]] and not made
    assert "€49.90" in deco.labels["c1"] and "Free" in deco.labels[priced["c3"].id] and deco.labels is made[0]
    assert len(made) == 1


# -- one label per situation, as the course page says it ---------------------------------------------------

def _labels(app, user, courses, **context) -> dict:
    with app.test_request_context(**context):
        return dict(send(app, "lms.catalog.rendering", courses=courses, user=user).labels)


def _backoffice_enroll(app, db, people, lessons, user: str, course: str) -> None:
    with app.test_request_context(headers=as_user("mgr")):
        decision = send(app, "lms.enrollment.requested", course=lessons[course], user=people[user],
                        actor=people["mgr"], source="backoffice")
        assert decision.reason == "free_enrollment"
        app.config["TEST_HOST"].enroll(people[user], lessons[course])
        db.session.commit()


def test_a_learner_enrolled_for_free_sees_enrolled_not_the_price(app, db, host, priced, people):
    courses = list(priced.values())
    _labels(app, people["emp"], courses)  # the offers are kept: then one query of the user's standing
    _backoffice_enroll(app, db, people, priced, "emp", "c2")
    with sql_statements(db) as statements:
        mine = _labels(app, people["emp"], courses)
    assert "Enrolled" in mine["c2"] and "€129.00" not in mine["c2"] and "€49.90" in mine["c1"]
    plugin = [statement for statement in statements if "lms_stripe_" in statement]
    assert len(plugin) == 1 and "lms_stripe_settings" in plugin[0] and "lms_stripe_free_enrollments" in plugin[0]
    assert "€129.00" in _labels(app, people["par"], courses)["c2"]  # someone else still sees the price

    host.unenroll(people["emp"], priced["c2"])  # the host took the course back: the price again
    db.session.commit()
    assert "€129.00" in _labels(app, people["emp"], courses)["c2"]


def test_a_free_enrollment_shows_when_the_offers_are_read_with_the_users_standing(app, db, priced, people):
    _backoffice_enroll(app, db, people, priced, "emp", "c4")
    app.extensions["lms_stripe"].catalog_snapshots.clear()  # offers and standing read together, in one query
    with sql_statements(db) as statements:
        mine = _labels(app, people["emp"], list(priced.values()))
    assert "Enrolled" in mine["c4"] and "¥" not in mine["c4"]
    assert len([s for s in statements if "lms_stripe_" in s]) == 2


def test_the_settings_and_every_standing_of_the_user_come_in_one_query(app, db, priced, people):
    courses = list(priced.values())
    _labels(app, people["par"], courses)  # the offers are kept
    _backoffice_enroll(app, db, people, priced, "par", "c4")
    db.session.add_all([Purchase(user_id="par", course_id="c1", status="paid", amount=4990, currency="EUR"),
                        Purchase(user_id="par", course_id="c2", status="processing", amount=12900, currency="EUR"),
                        Purchase(user_id="u1", course_id="c2", status="paid", amount=12900, currency="EUR")])
    db.session.commit()
    with sql_statements(db) as statements:
        mine = _labels(app, people["par"], courses)
    plugin = [statement for statement in statements if "lms_stripe_" in statement]
    assert len(plugin) == 1 and "lms_stripe_settings" in plugin[0] and "lms_stripe_purchases" in plugin[0]
    assert "Purchased" in mine["c1"] and "Pending payment" in mine["c2"] and "Enrolled" in mine["c4"]
    assert "Free" in mine["c3"]
    theirs = _labels(app, people["u1"], courses)  # one standing of their own; none of Paul's
    assert "Purchased" in theirs["c2"] and "€49.90" in theirs["c1"] and "Not available to you" in theirs["c4"]


def test_a_school_without_settings_reads_them_with_the_offers(app, db, lessons, people):
    with sql_statements(db) as statements:
        labels = _labels(app, people["u1"], list(lessons.values()))
    assert all("Free" in labels[course] for course in lessons)
    plugin = [statement for statement in statements if "lms_stripe_" in statement]
    assert len(plugin) == 2 and "lms_stripe_course_offers" in plugin[1]  # no revision: no offers kept


def test_a_payment_being_processed_shows_as_pending(app, db, priced, people):
    db.session.add(Purchase(user_id="par", course_id="c2", status="processing", amount=12900, currency="EUR"))
    db.session.commit()
    assert "Pending payment" in _labels(app, people["par"], list(priced.values()))["c2"]


def test_no_price_for_a_course_outside_the_readers_audience(app, priced, people):
    courses = list(priced.values())
    public, partner, visitor = (_labels(app, people["u1"], courses), _labels(app, people["par"], courses),
                                _labels(app, None, courses))
    assert "€49.90" in public["c1"] and "Free" in public["c3"]
    assert all("Not available to you" in public[c] and "data-price" not in public[c] for c in ("c2", "c4"))
    assert "€129.00" in partner["c2"] and "Not available to you" in partner["c4"]
    assert "€129.00" in visitor["c2"] and "¥8,000" in visitor["c4"]  # may sign in to buy, as the course page says


def test_no_price_for_a_course_not_on_sale_whoever_reads(app, db, host, priced, people, configured):
    save_offer(db.session, "c1", {"is_paid": True, "amount": 4990, "currency": "EUR", "vat_rate": 2000,
                                  "audience": "public", "on_sale": False}, actor_id="adm")
    db.session.commit()
    for user in (people["u1"], people["emp"], None):
        assert "Not on sale" in _labels(app, user, list(priced.values()))["c1"]
    with app.test_request_context(headers=as_user("u1")):
        page = send(app, "lms.course.detail_rendering", course=priced["c1"], user=people["u1"])
    assert "not on sale" in page and "49.90" not in page  # the course page's one message, no price either
    host.locale = "fr"
    assert "Pas en vente" in _labels(app, people["u1"], list(priced.values()))["c1"]
    assert "Non disponible pour vous" in _labels(app, people["u1"], list(priced.values()))["c2"]


@pytest.mark.parametrize("user, expected", [("u1", ["c1", "c3"]), ("par", ["c1", "c2", "c3"]), (None, ["c1", "c2", "c3"])])
def test_a_maximum_price_keeps_only_courses_whose_price_the_reader_is_shown(app, priced, people, user, expected):
    headers = as_user(user) if user else {}
    with app.test_request_context(headers=headers):
        kept = send(app, "lms.catalog.filtering", courses=list(priced.values()), args=MultiDict({"price_max": "200"}))
    assert [c.id for c in kept] == expected


def test_a_maximum_price_leaves_out_a_course_not_on_sale(app, db, priced):
    save_offer(db.session, "c1", {"is_paid": True, "amount": 4990, "currency": "EUR", "vat_rate": 2000,
                                  "audience": "public", "on_sale": False}, actor_id="adm")
    db.session.commit()
    with app.test_request_context():
        kept = send(app, "lms.catalog.filtering", courses=list(priced.values()), args=MultiDict({"price_max": "60"}))
        paid = send(app, "lms.catalog.filtering", courses=list(priced.values()), args=MultiDict({"price": "paid"}))
    assert [c.id for c in kept] == ["c3"] and [c.id for c in paid] == ["c1", "c2", "c4"]


def test_the_price_filter_says_which_currencies_it_compares(app, db, host, priced, people):
    with app.test_request_context():
        widget = send(app, "lms.catalog.rendering", courses=list(priced.values()), user=None).filter_widget
    assert "Maximum price (EUR)" in widget
    assert 'aria-describedby="lms-stripe-price-max-help"' in widget
    assert "Courses priced in JPY are left out when a maximum price is set." in widget

    host.locale = "fr"
    save_offer(db.session, "c1", {"is_paid": True, "amount": 4990, "currency": "USD", "vat_rate": 2000,
                                  "audience": "public", "on_sale": True}, actor_id="adm")
    db.session.commit()
    with app.test_request_context():
        widget = send(app, "lms.catalog.rendering", courses=list(priced.values()), user=None).filter_widget
    assert "Prix maximum (EUR)" in widget and "JPY et USD" in widget

    save_offer(db.session, "c4", {"is_paid": False}, actor_id="adm")
    save_offer(db.session, "c1", {"is_paid": False}, actor_id="adm")
    db.session.commit()
    with app.test_request_context():
        widget = send(app, "lms.catalog.rendering", courses=list(priced.values()), user=None).filter_widget
    assert "Prix maximum (EUR)" in widget and "aria-describedby" not in widget  # every price in euros: no hint


@pytest.mark.parametrize("locale, typed, example", [("en", "49,9x", "49.90"), ("fr", "49.9x", "49,90")])
def test_a_maximum_price_that_is_not_an_amount_is_told_with_an_example_of_the_readers_own(app, host, priced, locale,
                                                                                          typed, example):
    host.locale = locale
    with app.test_request_context(query_string={"price_max": typed}):
        widget = send(app, "lms.catalog.rendering", courses=list(priced.values()), user=None).filter_widget
    assert 'role="alert"' in widget and f"50 {'or' if locale == 'en' else 'ou'} {example}." in widget
