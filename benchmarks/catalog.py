"""Catalog rendering cost of the plugin: 1,000 courses through a host, with and without the plugin.

    .venv/bin/python benchmarks/catalog.py [--courses 1000] [--rounds 101] [--host demo|bare|both]

Two hosts, each measured with and without the plugin in the same run, pages taken in turn:

- demo: the demo LMS (``lms_stripe_plugin.demo``), the reference host: its catalog page with the layout,
  navigation, a link and an enrolment badge per course, for a signed-in learner. "Alone" is the same app
  with the plugin's answers to the catalog signals switched off (its blueprint stays, as the layout links
  to it).
- bare: a host that does nothing but one query and a minimal template (compiled once, as
  ``render_template`` does). It shows what the plugin costs per course when the host costs almost nothing.

Prints the median time of one page for each, their ratio, the SQL queries the plugin adds and the Stripe
calls made. Targets: ratio <= 1.2, at most 2 added queries whatever the number of courses, 0 Stripe calls.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import responses  # noqa: E402
from blinker import signal  # noqa: E402
from flask import Flask, render_template, request  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402
from jinja2 import DictLoader  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.orm import Mapped, mapped_column  # noqa: E402

from lms_stripe_plugin import StripePayments, migrate  # noqa: E402
from lms_stripe_plugin.accounts import settings as payment_settings  # noqa: E402
from lms_stripe_plugin.shop.offers import save_offer  # noqa: E402

PAGE = """<!doctype html><html><body><h1>Catalog</h1>
{% for deco in decorations %}{{ deco.filter_widget }}{% endfor %}
<div class="grid">{% for course in courses %}
<div class="card"><h3><a href="/courses/{{ course.id }}">{{ course.title }}</a></h3>
<p>{{ course.description }}</p><p>{% for deco in decorations %}{{ deco.course_labels[course] }}{% endfor %}</p>
</div>{% endfor %}</div></body></html>"""

#: A shop taking payments: its secrets are stored (encrypted) and read with the settings.
SHOP = {"enabled": True, "default_currency": "EUR", "publishable_key": "pk_test_51Bench",
        "secret_key": "sk_test_51Bench", "webhook_secrets": ["whsec_bench"]}


def price_half(db, course_ids) -> None:
    """Every other course paid, prices all different."""
    for course_id in course_ids[::2]:
        save_offer(db.session, str(course_id), {"is_paid": True, "amount": 1000 + course_id, "currency": "EUR",
                                                "vat_rate": 2000, "audience": "public", "on_sale": True},
                   actor_id=None)
        db.session.commit()


def build_bare(with_plugin: bool, courses: int):
    db = SQLAlchemy()

    class Course(db.Model):
        __tablename__ = "bench_courses"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(db.String(200))
        description: Mapped[str] = mapped_column(db.Text)

    class Host:
        def current_user(self): return "u1"
        def get_user(self, user_id): return None
        def get_course(self, course_id): return db.session.get(Course, int(course_id))
        def user_id(self, user): return str(user)
        def course_id(self, course): return str(course.id)
        def course_title(self, course): return course.title
        def course_url(self, course): return f"/courses/{course.id}"
        def user_email(self, user): return "learner@example.com"
        def user_display_name(self, user): return "Learner"
        def user_audience(self, user): return "public"
        def can_purchase(self, user, course): return True
        def can_manage_payments(self, user): return False
        def can_enroll_others(self, user, course): return False
        def is_enrolled(self, user, course): return False
        def enroll(self, user, course): pass
        def unenroll(self, user, course): pass
        def get_locale(self): return "fr"

    app = Flask(f"bench_{with_plugin}")
    app.config.update(SECRET_KEY="bench", SQLALCHEMY_DATABASE_URI="sqlite://")
    app.jinja_loader = DictLoader({"catalog.html": PAGE})
    db.init_app(app)
    if with_plugin:
        StripePayments(app, db=db, host=Host())

    @app.route("/catalog")
    def catalog():
        rows = db.session.query(Course).order_by(Course.id).all()
        for _r, kept in signal("lms.catalog.filtering").send(app, courses=rows, args=request.args):
            if kept is not None:
                rows = kept
        decorations = [value for _r, value in signal("lms.catalog.rendering").send(app, courses=rows, user="u1")
                       if value is not None]
        return render_template("catalog.html", courses=rows, decorations=decorations)

    with app.app_context():
        db.create_all()
        db.session.add_all(Course(title=f"Course {i}", description=f"What course {i} teaches, in a sentence.")
                           for i in range(courses))
        db.session.commit()
        if with_plugin:
            migrate.upgrade()
            price_half(db, list(range(1, courses + 1)))
            payment_settings.save(db.session, SHOP, actor_id=None)
            db.session.commit()
    return app, db, app.test_client()


def build_demo(with_plugin: bool, courses: int):
    from lms_stripe_plugin.demo import create_app
    from lms_stripe_plugin.demo.models import Course, db

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "DEMO_ENABLE_PAYMENTS": False})
    with app.app_context():
        missing = courses - db.session.query(Course).count()
        db.session.add_all(Course(title=f"Course {i}", description=f"What course {i} teaches, in a sentence.")
                           for i in range(missing))
        db.session.commit()
        seeded = {int(offer_id) for offer_id in _priced_ids(db)}
        price_half(db, [c for (c,) in db.session.query(Course.id).order_by(Course.id) if c not in seeded])
        payment_settings.save(db.session, SHOP, actor_id=None)
        db.session.commit()
    if not with_plugin:  # the hooks find no plugin for this app and answer nothing
        app.extensions["lms_stripe (off)"] = app.extensions.pop("lms_stripe")
    client = app.test_client()
    client.get("/demo/login/learner")
    return app, db, client


def _priced_ids(db):
    from lms_stripe_plugin.core.models import CourseOffer

    return [course_id for (course_id,) in db.session.query(CourseOffer.course_id)]


def count_queries(app, db, client, url: str) -> tuple[int, str]:
    """The SQL statements one page runs, once the caches are warm, and the page."""
    queries = []
    with app.app_context():
        listener = lambda *a: queries.append(a[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = client.get(url)
    finally:
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", listener)
    assert response.status_code == 200, response.status_code
    return len(queries), response.get_data(as_text=True)


def measure(clients: dict, rounds: int, url: str) -> dict[str, list[float]]:
    """Seconds per page for each client, pages taken in turn (the order swapped every round), so that
    the machine's drift weighs on each alike."""
    for client in clients.values():  # warm up templates and caches
        client.get(url)
    times = {name: [] for name in clients}
    order = list(clients)
    for _ in range(rounds):
        order.reverse()
        for name in order:
            start = time.perf_counter()
            response = clients[name].get(url)
            times[name].append(time.perf_counter() - start)
            assert response.status_code == 200
    return times


def report(title: str, build, courses: int, rounds: int, urls) -> None:
    host_app, host_db, host_client = build(False, courses)
    plugin_app, plugin_db, plugin_client = build(True, courses)
    print(f"{title}:")
    for label, url in urls:
        times = measure({"host": host_client, "plugin": plugin_client}, rounds, url)
        host_time, plugin_time = statistics.median(times["host"]), statistics.median(times["plugin"])
        host_queries, _page = count_queries(host_app, host_db, host_client, url)
        plugin_queries, page = count_queries(plugin_app, plugin_db, plugin_client, url)
        assert "lms-stripe-price" in page and "lms-stripe-price" not in _page
        print(f"  {label}:")
        print(f"    host alone:           {host_time * 1000:.1f} ms")
        print(f"    host with the plugin: {plugin_time * 1000:.1f} ms  "
              f"(+{(plugin_time - host_time) * 1e6 / courses:.1f} µs per course)")
        print(f"    ratio:                {plugin_time / host_time:.2f}  (target <= 1.2)")
        print(f"    SQL queries added:    {plugin_queries - host_queries}  "
              f"(host alone: {host_queries}; target <= 2)")


HOSTS = {
    "demo": ("demo LMS (signed-in learner)", build_demo),
    "bare": ("bare host (one query, a minimal template)", build_bare),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--courses", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=101)
    parser.add_argument("--host", choices=(*HOSTS, "both"), default="both")
    args = parser.parse_args()
    if args.host == "both":  # one process per host, so that neither weighs on the other's memory
        print(f"courses: {args.courses}, half of them paid; median of {args.rounds} pages, taken in turn")
        for name in HOSTS:
            sys.stdout.flush()
            subprocess.run([sys.executable, __file__, "--host", name, "--courses", str(args.courses),
                            "--rounds", str(args.rounds)], check=True)
        return
    title, build = HOSTS[args.host]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as stripe_http:
        report(title, build, args.courses, args.rounds,
               (("catalog", "/catalog"), ("catalog filtered by price", "/catalog?price_max=15")))
    print(f"  Stripe calls: {len(stripe_http.calls)}  (target 0)")


if __name__ == "__main__":
    main()
