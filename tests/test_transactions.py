"""One owner per transaction: the plugin's answers to the host's signals join the host's transaction, so
the host's commit saves both and a refused save leaves nothing; the plugin never commits for the host."""
import pytest
from blinker import signal
from sqlalchemy import event, func, select
from werkzeug.datastructures import MultiDict

from lms_stripe_plugin.core.models import AuditEntry, CourseOffer, FreeEnrollment, Settings
from lms_stripe_plugin.core.txn import after_commit

from .conftest import as_user
from .minimal_host import Lesson, Seat


def send(app, name, **kwargs):
    answers = [value for receiver, value in signal(name).send(app, **kwargs)
               if receiver.__module__.startswith("lms_stripe_plugin")]
    assert len(answers) == 1, answers
    return answers[0]


def pricing_form(**fields):
    base = {"paid": "on", "price": "49.90", "currency": "EUR", "vat_rate": "20", "audience": "public", "on_sale": "on"}
    base.update(fields)
    return MultiDict({f"lms_stripe-{k}": v for k, v in base.items() if v is not None})


def count(db, model) -> int:
    db.session.rollback()  # read what the database kept, not what the session holds
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def commits(db):
    """Every COMMIT sent to the database (savepoints are released, not committed)."""
    seen = []
    listener = lambda _connection: seen.append(1)  # noqa: E731
    event.listen(db.engine, "commit", listener)
    yield seen
    event.remove(db.engine, "commit", listener)


def test_a_course_save_the_host_refuses_leaves_no_price(app, db, lessons, people, commits):
    revision = db.session.scalar(select(Settings.catalog_revision))
    with app.test_request_context(headers=as_user("adm")):
        lessons["c1"].title = ""  # the host's own field, which the host will refuse
        assert send(app, "lms.course.settings_saved", course=lessons["c1"], form=pricing_form()) is None
        db.session.rollback()  # the host refuses its own fields: nothing of this save may remain
    assert commits == []
    assert count(db, CourseOffer) == 0 and count(db, AuditEntry) == 0
    assert db.session.scalar(select(Settings.catalog_revision)) == revision
    assert db.session.get(Lesson, "c1").title == "Python basics"


def test_a_course_save_the_plugin_refuses_leaves_nothing(app, db, lessons, people, commits):
    with app.test_request_context(headers=as_user("adm")):
        errors = send(app, "lms.course.settings_saved", course=lessons["c1"], form=pricing_form(price="abc"))
        assert "lms_stripe-price" in errors
        db.session.rollback()
    assert commits == [] and count(db, CourseOffer) == 0 and count(db, AuditEntry) == 0


def test_a_course_save_is_kept_by_the_hosts_commit_with_the_hosts_own_changes(app, db, lessons, people, commits):
    with app.test_request_context(headers=as_user("adm")):
        lessons["c1"].title = "Python, the basics"
        assert send(app, "lms.course.settings_saved", course=lessons["c1"], form=pricing_form()) is None
        assert commits == []
        db.session.commit()
    assert count(db, CourseOffer) == 1
    assert db.session.get(Lesson, "c1").title == "Python, the basics"


def test_a_backoffice_enrollment_the_host_refuses_leaves_nothing(app, db, priced, people, signals, commits):
    with app.test_request_context(headers=as_user("mgr")):
        decision = send(app, "lms.enrollment.requested", course=priced["c1"], user=people["u1"],
                        actor=people["mgr"], source="backoffice")
        assert decision.allowed
        db.session.rollback()  # the host could not enroll (its own rule, a constraint…)
    assert commits == []
    assert count(db, FreeEnrollment) == 0 and count(db, Seat) == 0
    assert count(db, AuditEntry) == 3  # the three prices of the `priced` fixture, nothing more
    assert "free_enrollment_recorded" not in signals


@pytest.mark.parametrize("name, kwargs", [
    ("lms.course.settings_form", {"course": "c1"}),
    ("lms.course.settings_saved", {"course": "c1", "form": pricing_form()}),
    ("lms.catalog.filtering", {"courses": ["c1", "c2"], "args": MultiDict({"price_max": "60"})}),
    ("lms.catalog.rendering", {"courses": ["c1", "c2"], "user": "u1"}),
    ("lms.course.detail_rendering", {"course": "c1", "user": "u1"}),
    ("lms.enrollment.requested", {"course": "c1", "user": "u1", "actor": "u1", "source": "self"}),
    ("lms.enrollment.requested", {"course": "c1", "user": "u2", "actor": "mgr", "source": "backoffice"}),
])
def test_no_hook_commits_the_hosts_session(app, db, priced, people, configured, commits, name, kwargs):
    def resolve(value):
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return priced.get(value) or people.get(value) if isinstance(value, str) else value

    with app.test_request_context(headers=as_user("adm")):
        db.session.add(Lesson(id="c9", title="The host's pending course"))
        send(app, name, **{key: resolve(value) for key, value in kwargs.items()})
        db.session.rollback()
    assert commits == []
    assert db.session.get(Lesson, "c9") is None


def test_work_after_the_commit_that_commits_runs_in_turn_not_inside_one_another(app, db):
    """A hundred follow-ups, each committing work of its own: no recursion, and one that rolls back drops
    nothing but its own."""
    ran, depth = [], [0]

    def follow_up(n):
        def run():
            depth[0] += 1
            ran.append((n, depth[0]))
            db.session.execute(select(func.count()).select_from(AuditEntry))  # its own transaction
            after_commit(db.session, lambda: ran.append((f"{n} done", depth[0])))
            if n == 50:
                db.session.rollback()  # this one fails: its own callback is dropped
            else:
                db.session.commit()
            depth[0] -= 1
        return run

    for n in range(100):
        after_commit(db.session, follow_up(n))
    db.session.commit()

    assert [n for n, _depth in ran if isinstance(n, int)] == list(range(100))
    assert max(d for _n, d in ran) == 1
    assert len([n for n, _depth in ran if isinstance(n, str)]) == 99 and ("50 done", 1) not in ran
