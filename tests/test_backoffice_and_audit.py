"""Back-office enrollments (free, recorded), the audit log (every payment action, its actor and time, filters,
keyset pagination), and who may reach the administrators' payment actions."""
import html
import re
from datetime import datetime, timezone

import pytest
import responses
from blinker import signal

from lms_stripe_plugin.core import audit
from lms_stripe_plugin.core.models import AuditEntry, FreeEnrollment, Invoice, Purchase, Refund

from .conftest import as_user, without_labels
from .refund_support import (credit_note, csrf, dispute, enrolled, paid_purchase, purchase_and_invoice, refund,
                             refunds_of, rows, send_event, stub_create_refund, stub_credit_note, stub_get_dispute,
                             stub_get_refund, text)
from .stripe_stubs import (checkout_session, invoice as stripe_invoice, stub_create_session, stub_retrieve_session,
                           stub_tax_rate)


def send(app, name, **kwargs):
    """The plugin's one answer to a host signal."""
    answers = [value for receiver, value in signal(name).send(app, **kwargs)
               if receiver.__module__.startswith("lms_stripe_plugin")]
    assert len(answers) == 1, answers
    return answers[0]


def backoffice_enroll(app, people, lessons, *, user="u2", course="c1", actor="mgr", **extra):
    """What a host's back office does: ask the plugin, enroll when allowed, and commit (or roll back)."""
    session = app.extensions["lms_stripe"].session
    with app.test_request_context(headers=as_user(actor)):
        decision = send(app, "lms.enrollment.requested", course=lessons[course], user=people[user],
                        actor=people[actor], source="backoffice", **extra)
        if decision is None or decision.allowed:
            app.config["TEST_HOST"].enroll(people[user], lessons[course])
            session.commit()
        else:
            session.rollback()
        return decision


_ROW = re.compile(r'<tr data-action="([a-z_]+)"><td>([^<]*)</td><td>(?:<span class="badge muted">)?([^<]*)(?:</span>)?</td>'
                  r"\s*<td>([^<]*)")
_OLDER = re.compile(r'<a class="button secondary" href="([^"]+)">Older')


def audit_rows(response) -> list[tuple[str, str, str, str]]:
    """(when, action, who, what happened) of each row of the audit log page."""
    assert response.status_code == 200
    return [(html.unescape(when), action, html.unescape(who), html.unescape(what).strip())
            for action, when, who, what in _ROW.findall(without_labels(response.get_data(as_text=True)))]


def older_link(response) -> str | None:
    found = _OLDER.search(response.get_data(as_text=True))
    return html.unescape(found.group(1)) if found else None


# -- back-office enrollments -----------------------------------------------------------------------

@pytest.mark.parametrize("actor", ["mgr", "adm"])
def test_a_backoffice_enrollment_is_free_recorded_and_listed(app, client, db, people, priced, configured, stripe_http,
                                                             signals, actor):
    decision = backoffice_enroll(app, people, priced, actor=actor)

    assert decision.allowed and decision.reason == "free_enrollment"
    assert len(stripe_http.calls) == 0
    (row,) = rows(db, FreeEnrollment)
    assert (row.user_id, row.course_id, row.actor_id) == ("u2", "c1", actor)
    assert rows(db, Purchase) == [] and rows(db, Invoice) == []
    assert [s["enrollment"].id for s in signals["free_enrollment_recorded"]] == [row.id]

    page = client.get("/payments/admin/free-enrollments", headers=as_user("adm"))
    assert page.status_code == 200
    names = {"mgr": "Max Manager", "adm": "Ada Admin"}
    assert f"<td>Sam</td><td>Python basics</td><td>{names[actor]}</td>" in without_labels(page.get_data(as_text=True))
    (entry,) = rows(db, AuditEntry, AuditEntry.action == "free_enrollment")
    assert (entry.actor_id, entry.user_id, entry.course_id) == (actor, "u2", "c1")


def test_a_backoffice_enrollment_asked_by_a_learner_is_refused(app, client, db, people, priced, configured,
                                                              stripe_http, signals):
    decision = backoffice_enroll(app, people, priced, actor="u1")

    assert not decision.allowed and decision.reason == "not_allowed"
    assert rows(db, FreeEnrollment) == [] and len(stripe_http.calls) == 0
    assert "free_enrollment_recorded" not in signals
    assert rows(db, AuditEntry, AuditEntry.action == "free_enrollment") == []
    assert "None yet." in text(client.get("/payments/admin/free-enrollments", headers=as_user("adm")))


def test_enrolling_someone_already_enrolled_again_records_nothing(app, db, people, priced, configured, signals):
    assert backoffice_enroll(app, people, priced).reason == "free_enrollment"
    again = backoffice_enroll(app, people, priced)
    assert (again.allowed, again.reason) == (False, "already_enrolled")
    assert "Already enrolled" in again.message
    assert len(rows(db, FreeEnrollment)) == 1 and len(signals["free_enrollment_recorded"]) == 1
    assert len(rows(db, AuditEntry, AuditEntry.action == "free_enrollment")) == 1


def test_a_buyer_is_enrolled_as_such_not_for_free(app, db, people, priced, configured):
    db.session.add(Purchase(user_id="u2", course_id="c1", status="paid", amount=4990, currency="EUR"))
    db.session.commit()
    decision = backoffice_enroll(app, people, priced)
    assert (decision.allowed, decision.reason) == (True, "purchased") and rows(db, FreeEnrollment) == []


def test_a_payment_being_processed_warns_and_the_manager_chooses(app, db, host, people, priced, configured):
    db.session.add(Purchase(user_id="u2", course_id="c1", status="processing", amount=4990, currency="EUR"))
    db.session.commit()
    warned = backoffice_enroll(app, people, priced)
    assert (warned.allowed, warned.reason) == (False, "payment_processing")
    assert "still being processed" in warned.message
    assert rows(db, FreeEnrollment) == [] and not host.is_enrolled(people["u2"], priced["c1"])
    confirmed = backoffice_enroll(app, people, priced, confirmed=True)
    assert (confirmed.allowed, confirmed.reason) == (True, "free_enrollment") and len(rows(db, FreeEnrollment)) == 1


def test_a_backoffice_enrollment_into_a_free_course_is_not_recorded(app, db, people, priced, configured):
    assert backoffice_enroll(app, people, priced, course="c3") is None
    assert rows(db, FreeEnrollment) == []


# -- the audit log ---------------------------------------------------------------------------------

def _buy_through_checkout(client, db, stripe_http) -> int:
    """Léa buys c1: the Buy click (checkout started), then Stripe's checkout.session.completed (paid, invoice)."""
    stub_tax_rate(stripe_http)
    stub_create_session(stripe_http, checkout_session(0, session_id="cs_test_audit"))
    token = csrf(client, "/payments/courses/c1", user="u1")
    assert client.post("/payments/checkout/c1", data={"csrf_token": token}, headers=as_user("u1")).status_code == 303
    (purchase,) = rows(db, Purchase)
    done = checkout_session(purchase.id, session_id="cs_test_audit", status="complete", payment_status="paid",
                            invoice=stripe_invoice(purchase.id), payment_intent="pi_test_1", customer="cus_test_1")
    stub_retrieve_session(stripe_http, done)
    assert send_event(client, "checkout.session.completed", done, "evt_paid").status_code == 200
    return purchase.id


def test_the_audit_log_lists_every_payment_action_with_its_actor_and_time(app, client, db, host, people, priced,
                                                                          configured, stripe_http):
    purchase_id = _buy_through_checkout(client, db, stripe_http)
    (invoice,) = rows(db, Invoice)
    assert enrolled(host)

    # A partial refund whose refund fails, retried; then the cancellation of the rest.
    stub_credit_note(stripe_http, credit_note(amount=1000, refund_id="re_part"))
    stub_get_refund(stripe_http, refund(refund_id="re_part", amount=1000, status="failed",
                                        failure_reason="lost_or_stolen_card"))
    token = csrf(client, f"/payments/admin/invoices/{invoice.id}/refund")
    assert client.post(f"/payments/admin/invoices/{invoice.id}/refund", data={"csrf_token": token, "amount": "10.00"},
                       headers=as_user("adm")).status_code == 302
    (failed,) = refunds_of(db, purchase_id)
    stub_create_refund(stripe_http, refund(refund_id="re_retry", amount=1000))
    assert client.post(f"/payments/admin/refunds/{failed.id}/retry", data={"csrf_token": token},
                       headers=as_user("adm")).status_code == 302
    stripe_http.replace(responses.POST, "https://api.stripe.com/v1/credit_notes",
                        json=credit_note(cn_id="cn_test_2", amount=3990, refund_id="re_rest", number="ABC-0001-CN-02"))
    stub_get_refund(stripe_http, refund(refund_id="re_rest", amount=3990))
    assert client.post(f"/payments/admin/invoices/{invoice.id}/cancel", data={"csrf_token": token},
                       headers=as_user("adm")).status_code == 302
    # A dispute, and a free enrollment from the back office.
    stub_get_dispute(stripe_http, dispute())
    assert send_event(client, "charge.dispute.created", dispute(), "evt_dispute").status_code == 200
    backoffice_enroll(app, people, priced, user="u2", course="c2", actor="mgr")

    found = audit_rows(client.get("/payments/admin/audit", headers=as_user("adm")))

    actors: dict[str, set] = {}
    for _when, action, who, _what in found:
        actors.setdefault(action, set()).add(who)
    # People by their names; what Stripe's events did, as Stripe; what the plugin recorded of Stripe's
    # answers to an administrator's click (a refund found failed or succeeded), as the plugin.
    plugin = "The payments plugin"
    assert actors == {
        "settings_changed": {"Ada Admin"}, "course_pricing_changed": {"Ada Admin"}, "checkout_started": {"Léa"},
        "paid": {"Stripe"}, "invoice_issued": {"Stripe"}, "refund_requested": {"Ada Admin"},
        "refund_failed": {plugin}, "refund_retried": {"Ada Admin"}, "refund_succeeded": {plugin},
        "access_revoked": {"Ada Admin"}, "dispute_opened": {"Stripe"}, "free_enrollment": {"Max Manager"},
        "credit_note_issued": {"Ada Admin"},
    }
    said = {action: what for _when, action, _who, what in found}
    assert said["checkout_started"] == "Léa started paying for “Python basics”."
    assert said["paid"] == "Léa paid €49.90 for “Python basics”."
    assert said["refund_retried"] == "The refund of €10.00 to Léa was tried again."
    assert said["access_revoked"] == "Léa no longer has access to “Python basics”."
    assert said["free_enrollment"] == "Sam was enrolled in “Flask advanced” free of charge."
    assert said["invoice_issued"].startswith("Invoice ABC-") and said["invoice_issued"].endswith("issued to Léa for “Python basics”.")
    assert len(found) == len(rows(db, AuditEntry))
    newest_first = [action for _when, action, *_rest in found]
    assert newest_first[0] == "free_enrollment"
    assert newest_first == [e.action for e in sorted(rows(db, AuditEntry), key=lambda e: e.id, reverse=True)]


def test_the_audit_log_speaks_french_with_french_amounts(client, db, host, people, priced):
    audit.record(db.session, "refund_succeeded", user_id="u1", course_id="c1", amount=1250, currency="EUR")
    audit.record(db.session, "payment_requested", actor_id="adm", user_id="u1", amount=9000, currency="EUR",
                 invoice=7, channels=["email", "sms"])
    db.session.commit()
    host.locale = "fr"
    found = audit_rows(client.get("/payments/admin/audit", headers=as_user("adm")))
    assert [(who, what) for _when, _action, who, what in found[:2]] == [
        ("Ada Admin", "90,00\u00a0€ demandés à Léa sur la facture n° 7, par e-mail et SMS."),
        ("Le module de paiement", "12,50\u00a0€ remboursés à Léa pour «\u00a0Python basics\u00a0»."),
    ]


@pytest.fixture
def history(db, people):
    """Four audit entries on known days (UTC), oldest first."""
    spec = [
        ("paid", None, "u1", "c1", datetime(2026, 1, 10, 23, 59, 59, tzinfo=timezone.utc)),
        ("refund_requested", "adm", "u1", "c1", datetime(2026, 1, 11, 0, 0, 0, tzinfo=timezone.utc)),
        ("free_enrollment", "mgr", "u2", "c2", datetime(2026, 1, 12, 12, 0, 0, tzinfo=timezone.utc)),
        ("settings_changed", "adm", None, None, datetime(2026, 1, 13, 8, 30, 0, tzinfo=timezone.utc)),
    ]
    for action, actor, user, course, when in spec:
        entry = audit.record(db.session, action, actor_id=actor, user_id=user, course_id=course)
        entry.created_at = when
    db.session.commit()
    return [action for action, *_rest in spec]


@pytest.mark.parametrize("query, expected", [
    ("", ["settings_changed", "free_enrollment", "refund_requested", "paid"]),
    ("action=refund_requested", ["refund_requested"]),
    ("action=no_such_action", ["settings_changed", "free_enrollment", "refund_requested", "paid"]),
    ("actor=adm", ["settings_changed", "refund_requested"]),
    ("learner=u1", ["refund_requested", "paid"]),
    ("course=c2", ["free_enrollment"]),
    ("from=2026-01-11", ["settings_changed", "free_enrollment", "refund_requested"]),
    ("to=2026-01-10", ["paid"]),
    ("from=2026-01-11&to=2026-01-12", ["free_enrollment", "refund_requested"]),
    ("from=2026-01-11&to=2026-01-11&learner=u1", ["refund_requested"]),
    ("action=paid&actor=adm", []),
    ("from=yesterday", ["settings_changed", "free_enrollment", "refund_requested", "paid"]),
])
def test_the_audit_log_filters(client, history, query, expected):
    response = client.get(f"/payments/admin/audit?{query}", headers=as_user("adm"))
    assert [action for _when, action, *_rest in audit_rows(response)] == expected
    if not expected:
        assert "Nothing recorded." in text(response)


def test_the_audit_log_shows_the_time_and_keeps_the_filters_in_the_form(app, client, history):
    response = client.get("/payments/admin/audit?actor=mgr&from=2026-01-12", headers=as_user("adm"))
    assert audit_rows(response) == [("Jan 12, 2026, 12:00:00\u202fPM", "free_enrollment", "Max Manager",
                                     "Sam was enrolled in course c2 free of charge.")]  # a course the LMS lacks
    assert "When (UTC)" in response.get_data(as_text=True)
    app.config["LMS_STRIPE_TIMEZONE"] = "Europe/Paris"
    response = client.get("/payments/admin/audit?actor=mgr&from=2026-01-12", headers=as_user("adm"))
    assert audit_rows(response)[0][0] == "Jan 12, 2026, 1:00:00\u202fPM" and "When (Europe/Paris)" in text(response)
    body = response.get_data(as_text=True)
    assert 'name="actor" size="8" value="mgr"' in body and 'name="from" value="2026-01-12"' in body


def test_the_audit_log_pages_with_the_older_link(app, client, db, people):
    app.config["LMS_STRIPE_PAGE_SIZE"] = 2
    for number in range(5):
        audit.record(db.session, "paid" if number % 2 == 0 else "refund_requested", user_id=f"u{number}")
    db.session.commit()
    expected = [e.user_id for e in sorted(rows(db, AuditEntry), key=lambda e: e.id, reverse=True)]

    pages, url = [], "/payments/admin/audit"
    while url:
        response = client.get(url, headers=as_user("adm"))
        pages.append([what for _when, _action, _who, what in audit_rows(response)])
        url = older_link(response)
        assert len(pages) < 10

    assert [len(page) for page in pages] == [2, 2, 1]
    said = [what for page in pages for what in page]
    names = [{"u1": "Léa", "u2": "Sam"}.get(user_id, f"learner {user_id}") for user_id in expected]
    assert len(said) == len(names) and all(name in what for name, what in zip(names, said))

    filtered, url = [], "/payments/admin/audit?action=paid"
    while url:
        response = client.get(url, headers=as_user("adm"))
        filtered.append([action for _when, action, *_rest in audit_rows(response)])
        url = older_link(response)
        assert url is None or "action=paid" in url
    assert filtered == [["paid", "paid"], ["paid"]]


# -- who may act -----------------------------------------------------------------------------------

@pytest.fixture
def targets(db, host, people, priced, configured):
    """A paid invoice and a failed refund of it: the ids the administrators' URLs take."""
    purchase_id, invoice_id = paid_purchase(db, host)
    failed = Refund(purchase_id=purchase_id, amount=4990, currency="EUR", status="failed", full=True,
                    revoke_access=True, origin="admin", actor_id="adm", idempotency_key="lms-refund-test-failed",
                    failure_reason="declined")
    db.session.add(failed)
    db.session.commit()
    return {"purchase": purchase_id, "invoice": invoice_id, "refund": failed.id}


ADMIN_PAGES = ["/payments/admin/invoices/{invoice}", "/payments/admin/invoices/{invoice}/cancel",
               "/payments/admin/invoices/{invoice}/refund", "/payments/admin/audit",
               "/payments/admin/free-enrollments"]
ADMIN_ACTIONS = ["/payments/admin/invoices/{invoice}/cancel", "/payments/admin/invoices/{invoice}/refund",
                 "/payments/admin/refunds/{refund}/retry"]
FORM = {"amount": "10.00", "reason": "Not allowed", "revoke_access": "on"}


def _unchanged(db, host, targets):
    purchase, invoice = purchase_and_invoice(db, targets["purchase"])
    assert (purchase.status, purchase.amount_refunded) == ("paid", 0)
    assert (invoice.status, invoice.amount_refunded) == ("paid", 0)
    assert [(r.id, r.status) for r in refunds_of(db, targets["purchase"])] == [(targets["refund"], "failed")]
    assert enrolled(host)


@pytest.mark.parametrize("user", ["u1", "mgr"])
@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_learners_and_managers_may_not_open_the_payment_administration(client, targets, stripe_http, user, url):
    response = client.get(url.format(**targets), headers=as_user(user))
    assert response.status_code == 403
    assert len(stripe_http.calls) == 0


@pytest.mark.parametrize("user", ["u1", "mgr"])
@pytest.mark.parametrize("url", ADMIN_ACTIONS)
def test_learners_and_managers_may_not_cancel_refund_or_retry(client, db, host, targets, stripe_http, signals, user,
                                                              url):
    token = csrf(client, f"/payments/admin/invoices/{targets['invoice']}/cancel")  # a valid token of this session
    response = client.post(url.format(**targets), data={"csrf_token": token, **FORM}, headers=as_user(user))
    assert response.status_code == 403
    assert len(stripe_http.calls) == 0 and signals == {}
    _unchanged(db, host, targets)


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_signed_out_visitors_are_asked_to_sign_in(client, targets, url):
    assert client.get(url.format(**targets)).status_code == 401


@pytest.mark.parametrize("url", ADMIN_ACTIONS)
def test_signed_out_posts_are_asked_to_sign_in(client, db, host, targets, stripe_http, url):
    token = csrf(client, f"/payments/admin/invoices/{targets['invoice']}/cancel")
    assert client.post(url.format(**targets), data={"csrf_token": token, **FORM}).status_code == 401
    assert len(stripe_http.calls) == 0
    _unchanged(db, host, targets)


@pytest.mark.parametrize("token", [None, "", "forged-token"])
@pytest.mark.parametrize("url", ADMIN_ACTIONS)
def test_posts_without_a_valid_csrf_token_are_refused_before_anything_happens(client, db, host, targets, stripe_http,
                                                                             signals, url, token):
    stub_credit_note(stripe_http, credit_note())
    stub_get_refund(stripe_http, refund())
    stub_create_refund(stripe_http, refund(refund_id="re_test_2"))
    data = dict(FORM) if token is None else {"csrf_token": token, **FORM}

    response = client.post(url.format(**targets), data=data, headers=as_user("adm"))

    assert response.status_code == 400 and "This form has expired" in text(response)
    assert len(stripe_http.calls) == 0 and signals == {}
    _unchanged(db, host, targets)
