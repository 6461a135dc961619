"""Invoices: "My invoices" and the PDF for learners; the administrators' list, filters, pages, totals, CSV."""
import csv
import html
import io
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

import openpyxl
import pytest
import responses
from sqlalchemy import select

from lms_stripe_plugin.core.models import Invoice, Purchase

from lms_stripe_plugin.testing import post_webhook

from .conftest import KEYS, STRIPE, as_user, without_labels
from .stripe_stubs import checkout_session, event, invoice

ADMIN_LIST = "/payments/admin/invoices"
ADMIN_CSV = "/payments/admin/invoices.csv"


def _at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=timezone.utc)


def _invoice(db, number, *, user_id="u1", course_id=None, issued_at, gross=4990, vat=832, currency="EUR",
             status="paid", refunded=0, email=None, name=None, title=None, pdf=True) -> Invoice:
    """A paid purchase and its invoice, written directly (each purchase is for its own course unless told)."""
    course_id = course_id or f"k-{number}"
    purchase = Purchase(user_id=user_id, course_id=course_id, amount=gross, currency=currency, amount_paid=gross,
                        status="cancelled" if status == "cancelled" else "paid", paid_at=issued_at)
    db.session.add(purchase)
    db.session.flush()
    record = Invoice(
        stripe_invoice_id=f"in_{number}", purchase_id=purchase.id, number=number, user_id=user_id,
        course_id=course_id, user_email=email or f"{user_id}@example.com", user_name=name or user_id,
        course_title=title or f"Course {course_id}", currency=currency, gross=gross, vat=vat, net=gross - vat,
        amount_refunded=refunded, status=status, issued_at=issued_at,
        pdf_url=f"https://pay.stripe.com/invoice/in_{number}/pdf" if pdf else None)
    db.session.add(record)
    db.session.commit()
    return record


@pytest.fixture
def invoices(db, people):
    """Five invoices of four learners, two currencies and several statuses, oldest first."""
    rows = [
        _invoice(db, "INV-001", user_id="u1", course_id="c1", issued_at=_at("2026-01-05"),
                 email="lea@example.com", name="Léa", title="Python basics"),
        _invoice(db, "INV-002", user_id="u2", course_id="c1", issued_at=_at("2026-01-20"), status="cancelled",
                 refunded=4990, email="sam@example.com", name="Sam", title="Python basics"),
        _invoice(db, "INV-003", user_id="u2", course_id="c2", issued_at=_at("2026-02-10"), gross=12900, vat=2150,
                 status="partially_refunded", refunded=1000, email="sam@example.com", name="Sam",
                 title="Flask advanced"),
        _invoice(db, "JP-004", user_id="emp", course_id="c4", issued_at=_at("2026-03-01"), gross=8000, vat=727,
                 currency="JPY", email="emp@example.com", name="Emma Employee", title="Japan trip"),
        _invoice(db, "INV-005", user_id="par", course_id="c2", issued_at=_at("2026-03-15"), gross=12900, vat=2150,
                 status="refund_failed", email="par@example.com", name="Paul Partner", title="Flask advanced"),
    ]
    return {row.number: row for row in rows}


def _listed(page: str) -> list[str]:
    """The invoice numbers of the admin list, in the order shown."""
    table = re.split(r'<table class="invoices[^"]*">', without_labels(page), maxsplit=1)
    return re.findall(r"<tr>\s*<td>([^<]+)</td>", table[1]) if len(table) == 2 else []


def _older_link(page: str) -> str | None:
    found = re.search(r'<a class="button secondary" href="([^"]+)">Older', page)
    return html.unescape(found.group(1)) if found else None


def _admin(client, query="", user="adm"):
    return client.get(f"{ADMIN_LIST}{query}", headers=as_user(user))


# -- My invoices ------------------------------------------------------------------------------------------------

def test_my_invoices_lists_only_the_learners_own(client, invoices):
    page = client.get("/payments/invoices", headers=as_user("u2"))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "INV-003" in text and "INV-002" in text
    assert text.index("INV-003") < text.index("INV-002")  # newest first
    assert "INV-001" not in text and "JP-004" not in text and "INV-005" not in text
    assert "€129.00" in text and f'href="/payments/invoices/{invoices["INV-003"].id}/pdf"' in text

    own = client.get("/payments/invoices", headers=as_user("u1")).get_data(as_text=True)
    assert "INV-001" in own and "€49.90" in own and "Python basics" in own and "INV-002" not in own


def test_my_invoices_when_there_are_none(client, invoices):
    page = client.get("/payments/invoices", headers=as_user("mgr")).get_data(as_text=True)
    assert "You have no invoices yet." in page and "INV-" not in page


def test_my_invoices_shows_a_payment_still_processed_by_the_bank(client, db, lessons, people):
    db.session.add_all([Purchase(user_id="u1", course_id="c2", status="processing", amount=12900, currency="EUR"),
                        Purchase(user_id="u2", course_id="c1", status="processing", amount=4990, currency="EUR")])
    db.session.commit()
    page = client.get("/payments/invoices", headers=as_user("u1")).get_data(as_text=True)
    assert "Payments being processed" in page and "Flask advanced" in page and "€129.00" in page
    assert "Processing" in page and "You have no invoices yet." not in page and "Python basics" not in page
    assert "Payments being processed" not in client.get("/payments/invoices", headers=as_user("mgr")).get_data(
        as_text=True)


def test_my_invoices_needs_a_signed_in_user(client, invoices):
    assert client.get("/payments/invoices").status_code == 401


@pytest.mark.parametrize("user, status", [("u1", 302), ("adm", 302), ("u2", 404), ("mgr", 404), (None, 401)])
def test_the_pdf_is_for_its_learner_and_administrators(client, invoices, user, status):
    record = invoices["INV-001"]
    response = client.get(f"/payments/invoices/{record.id}/pdf", headers=as_user(user) if user else {})
    assert response.status_code == status
    if status == 302:
        assert response.headers["Location"] == "https://pay.stripe.com/invoice/in_INV-001/pdf"
    else:
        assert "pay.stripe.com" not in response.get_data(as_text=True)


def test_an_unknown_invoice_pdf_is_not_found(client, invoices):
    assert client.get("/payments/invoices/999999/pdf", headers=as_user("adm")).status_code == 404


def test_a_pdf_stripe_has_not_produced_yet(client, db, people):
    record = _invoice(db, "INV-NOPDF", issued_at=_at("2026-01-05"), pdf=False)
    response = client.get(f"/payments/invoices/{record.id}/pdf", headers=as_user("u1"))
    assert response.status_code == 404
    assert "has not produced this invoice" in html.unescape(response.get_data(as_text=True))


# -- the administrators' list -------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [ADMIN_LIST, ADMIN_CSV])
def test_only_administrators_see_every_invoice(client, invoices, url):
    assert client.get(url).status_code == 401
    assert client.get(url, headers=as_user("u1")).status_code == 403
    assert client.get(url, headers=as_user("mgr")).status_code == 403
    assert client.get(url, headers=as_user("adm")).status_code == 200


def test_the_list_shows_every_invoice_newest_first_with_totals_per_currency(client, invoices):
    response = _admin(client)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _listed(page) == ["INV-005", "JP-004", "INV-003", "INV-002", "INV-001"]
    totals = _totals(client)
    rows = re.findall(r"<tr><td>([A-Z]{3})</td>(.*?)</tr>", totals)
    cells = {currency: re.findall(r'<td class="num">([^<]*)</td>', rest) for currency, rest in rows}
    # count, net, VAT, gross, refunded
    assert cells == {"EUR": ["4", "€298.16", "€59.64", "€357.80", "€59.90"],
                     "JPY": ["1", "¥7,273", "¥727", "¥8,000", "¥0"]}
    assert "Léa" in page and "lea@example.com" in page and "Python basics" in page


@pytest.mark.parametrize("query, expected", [
    ("?status=cancelled", ["INV-002"]),
    ("?status=partially_refunded", ["INV-003"]),
    ("?status=paid", ["JP-004", "INV-001"]),
    ("?status=refund_failed", ["INV-005"]),  # the invoices that need an administrator
    ("?course=c1", ["INV-002", "INV-001"]),
    ("?learner=u2", ["INV-003", "INV-002"]),
    ("?from=2026-02-01", ["INV-005", "JP-004", "INV-003"]),
    ("?to=2026-01-20", ["INV-002", "INV-001"]),  # the end date is included
    ("?from=2026-01-06&to=2026-02-10", ["INV-003", "INV-002"]),
    ("?q=jp-00", ["JP-004"]),
    ("?q=SAM@example", ["INV-003", "INV-002"]),
    ("?q=INV-001", ["INV-001"]),
    ("?q=nobody", []),
    ("?course=c2&learner=par", ["INV-005"]),
    ("?status=&course=&q=", ["INV-005", "JP-004", "INV-003", "INV-002", "INV-001"]),
])
def test_filters(client, invoices, query, expected):
    response = _admin(client, query)
    page = response.get_data(as_text=True)
    assert response.status_code == 200, re.findall(r'<p class="error" role="alert">([^<]*)</p>', page)
    assert _listed(page) == expected


def _totals(client, query=""):
    """The totals table the list's link leads to (not computed with each page of the list)."""
    page = _admin(client, query).get_data(as_text=True)
    link = html.unescape(re.search(r'id="show-totals" href="([^"]+)"', page).group(1))
    totals_page = client.get(link, headers=as_user("adm")).get_data(as_text=True)
    return re.split(r'<table class="totals[^"]*">', without_labels(totals_page), maxsplit=1)[1].split("</table>", 1)[0]


def test_totals_follow_the_filters(client, invoices):
    totals = _totals(client, "?learner=u2")
    assert "<tr><td>EUR</td><td class=\"num\">2</td>" in totals and "€178.90" in totals and "JPY" not in totals


@pytest.mark.parametrize("query, message", [
    ("?from=31/01/2026", "Use a date like 2026-01-31."),
    ("?to=2026-13-01", "Use a date like 2026-01-31."),
    ("?status=bogus", "Unknown status."),
    ("?q=" + "x" * 201, "At most 200 characters."),
    ("?course=" + "c" * 65, "At most 64 characters."),
    ("?from=2026-02-01&to=2026-01-31", "The end date is before the start date."),
    ("?order=sideways", "Unknown order."),
])
def test_bad_filters_are_400_with_a_message(client, invoices, query, message):
    response = _admin(client, query)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    csv_response = client.get(f"{ADMIN_CSV}{query}", headers=as_user("adm"))
    assert csv_response.status_code == 400 and message in csv_response.get_data(as_text=True)


@pytest.mark.parametrize("cursor", ["garbage", "2026-01-01T00:00:00_x", "_12", "notadate_5"])
def test_a_bad_cursor_is_400(client, invoices, cursor):
    assert _admin(client, f"?after={cursor}").status_code == 400


def _walk(client, first_url):
    """Follow the "Older" links from the first page; the numbers seen on each page."""
    pages, url = [], first_url
    while url:
        response = client.get(url, headers=as_user("adm"))
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        pages.append(_listed(page))
        if len(pages) > 1:
            assert "« Newest" in page
        url = _older_link(page)
        assert len(pages) < 20, "pagination does not end"
    return pages


def test_keyset_pagination_shows_every_invoice_once_newest_first(app, client, db, people):
    app.config["LMS_STRIPE_PAGE_SIZE"] = 2
    start = _at("2026-01-01")
    for n, hours in enumerate([5, 1, 4, 2, 3]):  # inserted out of date order
        _invoice(db, f"N-{n}", issued_at=start + timedelta(hours=hours, microseconds=n * 1000))
    pages = _walk(client, ADMIN_LIST)
    assert pages == [["N-0", "N-2"], ["N-4", "N-3"], ["N-1"]]
    assert '<td class="num">5</td>' in _totals(client)  # totals cover every page


def test_keyset_pagination_with_invoices_issued_at_the_same_moment(app, client, db, people):
    app.config["LMS_STRIPE_PAGE_SIZE"] = 2
    same = _at("2026-02-01")
    for n in range(5):
        _invoice(db, f"S-{n}", issued_at=same if n in (1, 2, 3) else same + timedelta(days=n - 2))
    seen = [number for page in _walk(client, ADMIN_LIST) for number in page]
    assert seen == ["S-4", "S-3", "S-2", "S-1", "S-0"]


@pytest.mark.parametrize("query, expected", [
    ("?q=flask", ["INV-005", "INV-003"]),  # the start of a word of the course's title, as the LMS names it
    ("?q=pyth bas", ["INV-002", "INV-001"]),
    ("?q=Emma", ["JP-004"]),  # a learner's name still
    ("?q=basics+flask", []),  # every word must start a word of one title
])
def test_the_search_finds_a_priced_courses_title(client, invoices, priced, query, expected):
    assert _listed(_admin(client, query).get_data(as_text=True)) == expected


def test_the_course_filter_offers_the_priced_courses_by_title_and_no_learner_id_box(client, invoices, priced):
    page = _admin(client).get_data(as_text=True)
    choices = re.findall(r'<option value="(c\d)"[^>]*>([^<]+)</option>', page)
    assert choices == [("c2", "Flask advanced"), ("c4", "Japan trip"), ("c1", "Python basics")]
    assert 'name="learner"' not in page
    assert _listed(_admin(client, "?course=c4").get_data(as_text=True)) == ["JP-004"]
    kept = _admin(client, "?learner=u2").get_data(as_text=True)  # a link that names a learner keeps it
    assert '<input type="hidden" name="learner" value="u2">' in kept and _listed(kept) == ["INV-003", "INV-002"]


def test_dates_are_written_the_readers_way_in_the_schools_time_zone(app, client, db, host, people):
    app.config["LMS_STRIPE_TIMEZONE"] = "Pacific/Auckland"  # 13 hours ahead in January
    _invoice(db, "TZ-1", issued_at=datetime(2026, 1, 5, 20, 0, tzinfo=timezone.utc))
    assert "Jan 6, 2026" in _admin(client).get_data(as_text=True)
    host.locale = "fr"
    page = _admin(client).get_data(as_text=True)
    assert "6 janv. 2026" in page and "2026-01-0" not in page
    mine = client.get("/payments/invoices", headers=as_user("u1")).get_data(as_text=True)
    assert "6 janv. 2026" in mine and "2026-01-0" not in mine


def test_oldest_first_pages_forward_through_every_invoice(app, client, invoices):
    app.config["LMS_STRIPE_PAGE_SIZE"] = 2
    pages, url = [], f"{ADMIN_LIST}?order=oldest"
    while url:
        page = client.get(url, headers=as_user("adm")).get_data(as_text=True)
        pages.append(_listed(page))
        found = re.search(r'<a class="button secondary" href="([^"]+)">Newer', page)
        url = html.unescape(found.group(1)) if found else None
        assert len(pages) < 10
    assert pages == [["INV-001", "INV-002"], ["INV-003", "JP-004"], ["INV-005"]]


def test_pagination_keeps_the_filters(app, client, invoices):
    app.config["LMS_STRIPE_PAGE_SIZE"] = 1
    assert _walk(client, f"{ADMIN_LIST}?course=c1") == [["INV-002"], ["INV-001"]]


# -- sorting by column ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sort, expected", [
    ("number", ["INV-001", "INV-002", "INV-003", "INV-005", "JP-004"]),
    ("-number", ["JP-004", "INV-005", "INV-003", "INV-002", "INV-001"]),
    ("learner", ["JP-004", "INV-001", "INV-005", "INV-002", "INV-003"]),  # Emma, Léa, Paul, Sam (twice: by id)
    ("-learner", ["INV-003", "INV-002", "INV-005", "INV-001", "JP-004"]),
    ("course", ["INV-003", "INV-005", "JP-004", "INV-001", "INV-002"]),  # Flask, Japan, Python
    ("-amount", ["JP-004", "INV-005", "INV-003", "INV-002", "INV-001"]),  # by currency, then amount
    ("amount", ["INV-001", "INV-002", "INV-003", "INV-005", "JP-004"]),
    ("status", ["INV-002", "INV-001", "JP-004", "INV-003", "INV-005"]),  # grouped, by date within
    ("date", ["INV-001", "INV-002", "INV-003", "JP-004", "INV-005"]),
    ("-date", ["INV-005", "JP-004", "INV-003", "INV-002", "INV-001"]),
])
def test_the_list_sorts_by_column(client, invoices, sort, expected):
    assert _listed(_admin(client, f"?sort={sort}").get_data(as_text=True)) == expected


def _headers(page: str) -> dict[str, tuple[str | None, str]]:
    """Each sortable header's label → (its aria-sort, the order its link asks for)."""
    found = re.findall(r'<th(?: class="num")?(?: aria-sort="(\w+)")?><a class="sort" href="([^"]+)">([^<]+)<', page)
    return {label: (sort or None, parse_qs(urlsplit(html.unescape(href)).query).get("sort", [""])[0])
            for sort, href, label in found}


def test_clicking_a_header_sorts_by_it_and_clicking_again_reverses(client, invoices):
    page = _admin(client).get_data(as_text=True)
    assert _headers(page) == {"Number": (None, "number"), "Date": ("descending", "date"),
                              "Learner": (None, "learner"), "Course": (None, "course"), "Gross": (None, "-amount"),
                              "Status": (None, "status")}
    by_amount = _admin(client, "?sort=-amount").get_data(as_text=True)
    headers = _headers(by_amount)
    assert headers["Gross"] == ("descending", "amount") and headers["Date"] == (None, "-date")
    assert [sort for sort, _order in headers.values() if sort] == ["descending"]  # one column is sorted
    assert _headers(_admin(client, "?sort=amount").get_data(as_text=True))["Gross"] == ("ascending", "-amount")
    assert _headers(_admin(client, "?sort=learner").get_data(as_text=True))["Learner"] == ("ascending", "-learner")


def test_the_order_is_kept_with_the_filters_in_the_headers_pages_totals_and_exports(app, client, invoices):
    app.config["LMS_STRIPE_PAGE_SIZE"] = 1
    page = _admin(client, "?course=c2&sort=-amount").get_data(as_text=True)
    assert '<option value="-amount" selected>' in page  # the form sends it again with new filters
    for label in ("Totals of these invoices", "Export CSV", "Export Excel", "Next page »"):
        href = re.search(rf'href="([^"]+)">{re.escape(label)}<', page)
        assert href, label
        query = parse_qs(urlsplit(html.unescape(href.group(1))).query)
        assert (query["course"], query["sort"]) == (["c2"], ["-amount"]), label
    assert all(parse_qs(urlsplit(html.unescape(href)).query)["course"] == ["c2"]
               for href in re.findall(r'<a class="sort" href="([^"]+)"', page))
    assert [row[0] for row in _csv(client, "?course=c2&sort=number")[1:]] == ["INV-003", "INV-005"]
    assert [row[0] for row in _csv(client, "?course=c2&sort=-number")[1:]] == ["INV-005", "INV-003"]
    workbook = openpyxl.load_workbook(io.BytesIO(client.get(f"{ADMIN_LIST}.xlsx?sort=amount",
                                                            headers=as_user("adm")).data))
    assert [row[0] for row in workbook.active.iter_rows(min_row=2, values_only=True) if row[0]] == [
        "INV-001", "INV-002", "INV-003", "INV-005", "JP-004"]


def _walk_sorted(client, url):
    """Follow the "Next page" links of a sorted list; the numbers seen, in order."""
    seen, pages = [], 0
    while url:
        response = client.get(url, headers=as_user("adm"))
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        seen += _listed(page)
        found = re.search(r'<a class="button secondary" href="([^"]+)">(?:Next page|Older|Newer)', page)
        url = html.unescape(found.group(1)) if found else None
        pages += 1
        assert pages < 20, "pagination does not end"
    return seen


@pytest.mark.parametrize("sort", ["number", "-number", "learner", "-learner", "course", "-course", "amount",
                                  "-amount", "status", "-status", "date", "-date"])
def test_keyset_pages_of_a_sorted_list_show_every_invoice_once_in_order(app, client, db, people, sort):
    """Ties (same name, same amount, same moment) and missing names, titles and numbers page through too."""
    app.config["LMS_STRIPE_PAGE_SIZE"] = 2
    same = _at("2026-02-01")
    for n, (name, title, gross, status) in enumerate([
            ("Zoé", "Python", 5000, "paid"), ("zoé", "python", 5000, "paid"), ("Adam", None, 1000, "cancelled"),
            ("Zoé", "Python", 5000, "open"), (None, "Art", 9000, "paid"), ("Adam", "Art", 1000, "paid"),
            ("eve", "python", 5000, "cancelled")]):
        row = _invoice(db, f"T-{n}", issued_at=same if n % 2 else same + timedelta(days=n), gross=gross, vat=0,
                       status=status, name=name or "x", title=title or "x")
        row.user_name, row.course_title = name, title  # some invoices have neither
        db.session.commit()
    nameless = Invoice(number=None, user_id="u9", user_email="u9@example.com", currency="EUR", net=0, vat=0, gross=0,
                       status="issuing", issued_at=same)
    db.session.add(nameless)
    db.session.commit()
    expected = _admin_order(db, sort)
    app.config["LMS_STRIPE_PAGE_SIZE"] = 50
    assert _listed(_admin(client, f"?sort={sort}").get_data(as_text=True)) == expected
    app.config["LMS_STRIPE_PAGE_SIZE"] = 2
    assert _walk_sorted(client, f"{ADMIN_LIST}?sort={sort}") == expected


def _admin_order(db, sort: str) -> list[str]:
    """The numbers in ``sort``'s order, computed here from the rows (the list shows "—" for no number)."""
    rows = db.session.scalars(select(Invoice)).all()
    keys = {"number": lambda r: (r.number or "",), "date": lambda r: (_naive(r.issued_at),),
            "learner": lambda r: ((r.user_name or r.user_email or "").lower(),),
            "course": lambda r: ((r.course_title or "").lower(),), "amount": lambda r: (r.currency, r.gross),
            "status": lambda r: (str(r.status), _naive(r.issued_at))}
    key = keys[sort.lstrip("-")]
    ordered = sorted(rows, key=lambda r: (*key(r), r.id), reverse=sort.startswith("-"))
    return [r.number or "—" for r in ordered]


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None) if moment.tzinfo else moment


@pytest.mark.parametrize("sort", ["bogus", "-", "--date", "number;DROP TABLE lms_stripe_invoices", "__class__",
                                  "Number", "amount desc", "gross", "id", "%00", "é" * 500])
def test_an_unknown_sort_is_ignored(client, invoices, sort):
    response = _admin(client, "?" + urlencode({"sort": sort}))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _listed(page) == ["INV-005", "JP-004", "INV-003", "INV-002", "INV-001"]  # newest first
    assert _headers(page)["Date"] == ("descending", "date")
    csv_response = client.get(f"{ADMIN_CSV}?" + urlencode({"sort": sort}), headers=as_user("adm"))
    assert csv_response.status_code == 200


@pytest.mark.parametrize("cursor", [
    "W10", "WyJ4Il0", "bnVsbA", "WzEsMl0", "!!!", "WyIyMDI2LTAxLTAxIiwgIngiXQ", "WyJJTlYiLDBd",
    "WyJJTlYiLDIxNDc0ODM2NDhd",  # ["INV", 2147483648]: beyond the ids
])
def test_a_forged_cursor_of_a_sorted_list_is_400(client, invoices, cursor):
    assert _admin(client, f"?sort=number&after={cursor}").status_code == 400


def test_a_cursor_of_another_order_is_400(app, client, invoices):
    app.config["LMS_STRIPE_PAGE_SIZE"] = 2
    page = _admin(client, "?sort=-amount").get_data(as_text=True)
    after = parse_qs(urlsplit(html.unescape(re.search(r'href="([^"]+)">Next page', page).group(1))).query)["after"][0]
    assert _admin(client, f"?sort=-amount&after={after}").status_code == 200
    assert _admin(client, f"?sort=learner&after={after}").status_code == 400


# -- CSV ---------------------------------------------------------------------------------------------------------

HEADERS = ["Number", "Issued (UTC)", "Status", "Origin", "E-mail", "Learner", "Description", "Currency",
           "Net (excl. VAT)", "VAT", "Total incl. VAT", "VAT rate (%)", "Discount", "Payment method", "Refunded", "Paid", "Remaining",
           "Due date", "Stripe invoice", "Credit note"]


def _csv(client, query="", *, delimiter=","):
    response = client.get(f"{ADMIN_CSV}{query}", headers=as_user("adm"))
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and response.mimetype_params.get("charset") == "utf-8"
    assert response.headers["Content-Disposition"] == "attachment; filename=invoices.csv"
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff")  # Excel reads UTF-8 (accents) only with it
    return list(csv.reader(io.StringIO(body[1:]), delimiter=delimiter))


def test_csv_export_has_a_header_and_amounts_in_major_units(client, invoices):
    rows = _csv(client)
    assert rows[0] == HEADERS
    by_number = {row[0]: dict(zip(HEADERS, row)) for row in rows[1:]}
    assert [row[0] for row in rows[1:]] == ["INV-005", "JP-004", "INV-003", "INV-002", "INV-001"]
    assert by_number["INV-001"] == {
        "Number": "INV-001", "Issued (UTC)": "2026-01-05 10:00", "Status": "Paid", "Origin": "Online purchase",
        "E-mail": "lea@example.com", "Learner": "Léa", "Description": "Python basics", "Currency": "EUR",
        "Net (excl. VAT)": "41.58", "VAT": "8.32", "Total incl. VAT": "49.90", "VAT rate (%)": "0", "Discount": "0.00",
        "Payment method": "", "Refunded": "0.00", "Paid": "0.00", "Remaining": "0.00", "Due date": "", "Stripe invoice": "in_INV-001",
        "Credit note": ""}
    assert (by_number["JP-004"]["Net (excl. VAT)"], by_number["JP-004"]["VAT"], by_number["JP-004"]["Total incl. VAT"]) \
        == ("7273", "727", "8000")
    assert by_number["INV-003"]["Refunded"] == "10.00"


def test_csv_export_in_french_is_for_french_excel(app, client, host, invoices):
    """Semicolons, decimal commas, French headers and statuses, times in the school's zone, said."""
    host.locale = "fr"
    app.config["LMS_STRIPE_TIMEZONE"] = "Europe/Paris"
    rows = _csv(client, delimiter=";")
    assert rows[0][:4] == ["Numéro", "Émise (Europe/Paris)", "Statut", "Origine"]
    lea = dict(zip(rows[0], rows[-1]))
    assert (lea["Numéro"], lea["Émise (Europe/Paris)"], lea["Statut"], lea["Total TTC"]) == \
        ("INV-001", "2026-01-05 11:00", "Payée", "49,90")


def test_csv_export_follows_the_filters(client, invoices):
    assert [row[0] for row in _csv(client, "?learner=u2")[1:]] == ["INV-003", "INV-002"]
    assert _csv(client, "?q=nobody") == [HEADERS]


def test_csv_export_neutralises_formulas(client, db, people):
    _invoice(db, "=1+1", issued_at=_at("2026-01-05"), email="@SUM(1+1)*cmd|' /C calc'!A0@evil.test",
             name="-2+3+cmd", title='=HYPERLINK("http://evil.test","Click")')
    [header, row] = _csv(client)
    cells = dict(zip(header, row))
    assert cells["Number"] == "'=1+1"
    assert cells["Description"] == "'=HYPERLINK(\"http://evil.test\",\"Click\")"
    assert cells["E-mail"] == "'@SUM(1+1)*cmd|' /C calc'!A0@evil.test"
    assert cells["Learner"] == "'-2+3+cmd"
    assert cells["Total incl. VAT"] == "49.90"  # numbers are left alone


def test_the_excel_export_has_typed_cells(client, invoices):
    response = client.get("/payments/admin/invoices.xlsx?learner=u1", headers=as_user("adm"))
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=invoices.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    sheet = book.active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == HEADERS
    lea = dict(zip(HEADERS, rows[1]))
    assert lea["Number"] == "INV-001" and lea["Issued (UTC)"] == datetime(2026, 1, 5, 10, 0)
    assert lea["Total incl. VAT"] == 49.9 and isinstance(lea["Total incl. VAT"], float)
    assert sheet.cell(row=2, column=11).number_format == "#,##0.00"


@pytest.fixture
def paid_in_several_ways(db, host, invoices):
    """INV-001 paid by card; INV-003 from Apple Pay; an administrator's invoice paid by two payment requests'
    Pay clicks (a card, then a SEPA debit) and a canceled payment; a payment link's invoice paid with Klarna."""
    from lms_stripe_plugin.core.models import InvoicePayment, PaymentAttempt

    from .link_support import make_link
    from .request_support import open_invoice, open_request

    for number, method in (("INV-001", "card"), ("INV-003", "apple_pay")):
        invoices[number].purchase.payment_method = method
    admin_invoice = open_invoice(db, host, user_id="u1", number="ADM-006")
    request_id, _token = open_request(db, admin_invoice)
    for n, (method, status) in enumerate((("card", "paid"), ("sepa_debit", "paid"), ("klarna", "canceled"))):
        attempt = PaymentAttempt(request_id=request_id, amount=1000, currency="EUR", status="attached",
                                 stripe_payment_intent_id=f"pi_req_{n}", payment_method=method)
        db.session.add(attempt)
        db.session.flush()
        db.session.add(InvoicePayment(invoice_id=admin_invoice, stripe_invoice_payment_id=f"inpay_{n}",
                                      stripe_payment_intent_id=f"pi_req_{n}", attempt_id=attempt.id, amount=1000,
                                      currency="EUR", status=status))
    link_id, _token = make_link(db)
    link_invoice = Invoice(stripe_invoice_id="in_link", source="link", number="LNK-007", user_email="pay@example.com",
                           user_name="Payer", currency="EUR", net=2500, vat=500, gross=3000, amount_paid=3000,
                           status="paid", issued_at=_at("2026-03-20"))
    db.session.add(link_invoice)
    db.session.flush()
    db.session.add(PaymentAttempt(link_id=link_id, amount=3000, currency="EUR", status="paid",
                                  invoice_id=link_invoice.id, payment_method="klarna"))
    db.session.commit()


def test_the_exports_say_how_each_invoice_was_paid(app, client, host, paid_in_several_ways):
    methods = {row[0]: row[HEADERS.index("Payment method")] for row in _csv(client)[1:]}
    assert methods == {"INV-001": "Card", "INV-002": "", "INV-003": "Apple Pay", "JP-004": "", "INV-005": "",
                       "ADM-006": "Card, SEPA Direct Debit", "LNK-007": "Klarna"}

    host.locale = "fr"
    rows = _csv(client, delimiter=";")
    french = {row[0]: row[rows[0].index("Moyen de paiement")] for row in rows[1:]}
    assert (french["INV-001"], french["ADM-006"], french["LNK-007"]) == \
        ("Carte bancaire", "Carte bancaire, Prélèvement SEPA", "Klarna")

    host.locale = "en"
    response = client.get("/payments/admin/invoices.xlsx", headers=as_user("adm"))
    rows = list(openpyxl.load_workbook(io.BytesIO(response.get_data())).active.iter_rows(values_only=True))
    column = list(rows[0]).index("Payment method")
    assert {row[0]: row[column] for row in rows[1:]}["ADM-006"] == "Card, SEPA Direct Debit"


def test_the_invoice_recorded_by_fulfilment_is_the_learners_to_download(client, db, people, priced, configured,
                                                                        stripe_http):
    purchase = Purchase(user_id="u1", course_id="c1", status="open", amount=4990, currency="EUR", vat_rate=2000)
    db.session.add(purchase)
    db.session.flush()
    purchase.stripe_checkout_session_id = session_id = f"cs_test_{purchase.id:04d}"
    db.session.commit()
    paid = checkout_session(purchase.id, status="complete", payment_status="paid", invoice=invoice(purchase.id))
    stripe_http.add(responses.GET, re.compile(rf"{STRIPE}/v1/checkout/sessions/{session_id}(\?.*)?$"), json=paid)
    assert post_webhook(client, event("checkout.session.completed", paid), KEYS["webhook_secrets"][0]).status_code == 200

    mine = client.get("/payments/invoices", headers=as_user("u1")).get_data(as_text=True)
    assert "ABC-0001" in mine and "€49.90" in mine and "Python basics" in mine
    [record] = db.session.scalars(select(Invoice)).all()
    pdf = client.get(f"/payments/invoices/{record.id}/pdf", headers=as_user("u1"))
    assert pdf.status_code == 302 and pdf.headers["Location"] == "https://pay.stripe.com/invoice/in_test_1/pdf"
    assert client.get(f"/payments/invoices/{record.id}/pdf", headers=as_user("u2")).status_code == 404
    assert _listed(_admin(client, "?q=abc-0001").get_data(as_text=True)) == ["ABC-0001"]
