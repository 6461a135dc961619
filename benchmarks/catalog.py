"""Catalog rendering cost of the plugin: 1,000 courses through a host, with and without the plugin.

    .venv/bin/python benchmarks/catalog.py [--courses 1000] [--rounds 30]

Prints the median time of one catalog page for the host alone and with the plugin (same run, same
host code, same courses), their ratio, the SQL queries the plugin adds, and the Stripe calls made.
Targets: ratio <= 1.2, at most 2 added queries whatever the number of courses, 0 Stripe calls.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import responses  # noqa: E402
from blinker import signal  # noqa: E402
from flask import Flask, render_template_string, request  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.orm import Mapped, mapped_column  # noqa: E402

from lms_stripe_plugin import StripePayments, migrate  # noqa: E402
from lms_stripe_plugin.pricing import save_offer  # noqa: E402
from lms_stripe_plugin import settings as payment_settings  # noqa: E402

PAGE = """<!doctype html><html><body><h1>Catalog</h1>
{% for deco in decorations %}{{ deco.filter_widget }}{% endfor %}
<div class="grid">{% for course in courses %}
<div class="card"><h3><a href="/courses/{{ course.id }}">{{ course.title }}</a></h3>
<p>{{ course.description }}</p><p>{% for deco in decorations %}{{ deco.labels.get(course.id|string, "") }}{% endfor %}</p>
</div>{% endfor %}</div></body></html>"""


def build(with_plugin: bool, courses: int):
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
        return render_template_string(PAGE, courses=rows, decorations=decorations)

    with app.app_context():
        db.create_all()
        db.session.add_all(Course(title=f"Course {i}", description=f"What course {i} teaches, in a sentence.")
                           for i in range(courses))
        db.session.commit()
        if with_plugin:
            migrate.upgrade()
            for i in range(1, courses + 1, 2):  # every other course is paid, prices all different
                save_offer(db.session, str(i), {"is_paid": True, "amount": 1000 + i, "currency": "EUR",
                                                "vat_rate": 2000, "audience": "public", "on_sale": True},
                           actor_id=None)
            payment_settings.save(db.session, {"default_currency": "EUR"}, actor_id=None)
    return app, db


def measure(app, db, rounds: int, url: str):
    queries = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    client = app.test_client()
    client.get("/catalog")  # warm up templates and caches
    times = []
    for _ in range(rounds):
        queries.clear()
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200
    return statistics.median(times), len(queries), response.get_data(as_text=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--courses", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as stripe_http:
        host_app, host_db = build(False, args.courses)
        plugin_app, plugin_db = build(True, args.courses)
        print(f"courses: {args.courses}, half of them paid; median of {args.rounds} pages")
        for label, url in (("catalog", "/catalog"), ("catalog filtered by price", "/catalog?price_max=1000")):
            host_time, host_queries, _page = measure(host_app, host_db, args.rounds, url)
            plugin_time, plugin_queries, page = measure(plugin_app, plugin_db, args.rounds, url)
            assert "\u00a0€" in page
            print(f"{label}:")
            print(f"  host alone:           {host_time * 1000:.1f} ms")
            print(f"  host with the plugin: {plugin_time * 1000:.1f} ms")
            print(f"  ratio:                {plugin_time / host_time:.2f}  (target <= 1.2)")
            print(f"  SQL queries added:    {plugin_queries - host_queries}  (host alone: {host_queries}; target <= 2)")
        print(f"Stripe calls:           {len(stripe_http.calls)}  (target 0)")


if __name__ == "__main__":
    main()
