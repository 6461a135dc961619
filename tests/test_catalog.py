"""The catalog's price filter and labels as a host's catalog page uses them: filtering then rendering the
courses kept, in one request."""
from contextlib import contextmanager

import pytest
from blinker import signal
from sqlalchemy import event
from werkzeug.datastructures import MultiDict

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


def test_the_filtered_page_costs_two_queries(app, db, priced, people):
    with app.test_request_context(headers=as_user("u1")):
        _filter_then_render(app, list(priced.values()), {"price_max": "50"}, people["u1"])  # reads the offers
    with app.test_request_context(headers=as_user("u1")), sql_statements(db) as statements:
        kept, deco = _filter_then_render(app, list(priced.values()), {"price_max": "50"}, people["u1"])
    assert [c.id for c in kept] == ["c1", "c3"] and "€49.90" in deco.labels["c1"]
    assert len(statements) == 2 and "lms_stripe_settings" in statements[0] and "lms_stripe_purchases" in statements[1]


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
    assert 0 < len(app.extensions["lms_stripe"].catalog_snapshot.selections) <= catalog._MAX_SELECTIONS


def test_unhashable_courses_are_filtered_and_labelled_by_id(app, host, priced, people):
    host.course_id = lambda course: course["id"]
    courses = [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}, {"id": "c4"}]
    with app.test_request_context():
        kept, deco = _filter_then_render(app, courses, {"price_max": "200"}, people["u1"])
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
    db.session.add_all([Purchase(user_id="u1", course_id="c1", status="paid", amount=4990, currency="EUR"),
                        Purchase(user_id="u1", course_id="c4", status="cancelled", amount=8000, currency="JPY"),
                        Purchase(user_id="u2", course_id="c2", status="paid", amount=12900, currency="EUR")])
    db.session.commit()
    with app.test_request_context():
        mine = send(app, "lms.catalog.rendering", courses=list(priced.values()), user=people["u1"]).labels
    assert "Purchased" in mine["c1"] and "¥8,000" in mine["c4"] and "€129.00" in mine["c2"]

