"""The messages of a payment request, composed from plain values in the learner's language, whatever the
language of the request that sends them."""
from __future__ import annotations

from datetime import date

import pytest
from jinja2 import ChoiceLoader, DictLoader

from lms_stripe_plugin import messages
from lms_stripe_plugin.core.enums import Channel, MessageStatus
from lms_stripe_plugin.core.i18n import current_locale
from lms_stripe_plugin.messages.errors import InvalidMessage
from lms_stripe_plugin.messages.segments import GSM7, segments
from lms_stripe_plugin.money import Money

LINK = "https://lms.example.org/payments/pay/AbCdEfGh0123456789abcdefghijklmnopqrstuvwx"
DUE = date(2026, 12, 3)
NBSP = "\u00a0"


def _email(**changes):
    values = dict(locale="en", school_name="École Élan", learner_name="Léa Martin", amount=Money(4990, "EUR"), due=DUE,
                  link=LINK, invoice_number="F-2026-0001")
    values.update(changes)
    return messages.payment_request_email(**values)


def _sms(**changes):
    values = dict(locale="en", school_name="École Élan", amount=Money(4990, "EUR"), due=DUE, link=LINK,
                  invoice_number="F-2026-0001")
    values.update(changes)
    return messages.payment_request_sms(**values)


# -- e-mail ------------------------------------------------------------------------------------------------

def test_a_request_in_english(app):
    subject, text, html = _email()
    assert subject == "École Élan asks you to pay €49.90 by December 3, 2026"
    assert text == ("Hello Léa Martin,\n\nÉcole Élan asks you to pay €49.90 by December 3, 2026.\n\n"
                    "Invoice: F-2026-0001\n\nPay online: " + LINK + "\n")
    assert '<html lang="en">' in html and f'<a href="{LINK}"' in html and ">Pay online</a>" in html
    assert "reminder" not in text.lower() and "overdue" not in text.lower() and "already" not in text


@pytest.mark.parametrize("locale, line, sms", [
    ("en", "It tops up your prepaid balance, which pays for your courses.", "Top-up of your balance."),
    # In French, with this long link, the words of the top-up are left out to keep the SMS in one part.
    ("fr", "Ce paiement recharge votre solde prépayé, qui paie vos formations.", "Payer : "),
])
def test_a_top_up_request_says_it_tops_up_the_balance_and_names_no_invoice(app, locale, line, sms):
    _subject, text, html = _email(locale=locale, invoice_number="", invoices=0, topup=True)
    assert line in text and line in html and "F-2026" not in text
    message = _sms(locale=locale, invoice_number="", invoices=0, topup=True)
    assert sms in message and LINK in message


def test_a_reminder_in_french(app):
    subject, text, html = _email(locale="fr", reminder=True)
    assert subject == "École Élan – rappel : 49,90" + NBSP + "€ à régler au plus tard le 3 décembre 2026"
    assert "Bonjour Léa Martin," in text and "Facture : F-2026-0001" in text
    assert "Ceci est un rappel : École Élan vous demande de régler 49,90" + NBSP + "€ au plus tard le 3 décembre 2026." in text
    assert "Si vous avez déjà payé, ne tenez pas compte de ce message." in text
    assert f"Payer en ligne : {LINK}" in text and '<html lang="fr">' in html and ">Payer en ligne</a>" in html


@pytest.mark.parametrize("locale, words", [
    ("en", ("Overdue: €49.90 to pay to École Élan (due on December 3, 2026)", "was due on December 3, 2026 and is overdue")),
    ("fr", ("En retard : 49,90" + NBSP + "€ à régler à École Élan (échéance le 3 décembre 2026)", "il est en retard")),
])
def test_overdue_says_so_and_wins_over_reminder(app, locale, words):
    subject, text, html = _email(locale=locale, reminder=True, overdue=True)
    assert subject == words[0] and words[1] in text and words[1] in html
    assert "color:#b42318" in html  # the overdue sentence stands out


def test_the_schools_note_is_kept_in_the_text_and_escaped_in_the_html(app):
    note = "Thanks!\r\n<script>alert('x')</script> & see you <b>soon</b>\n\n"
    subject, text, html = _email(message=note)
    assert "Message from École Élan:\nThanks!\n<script>alert('x')</script> & see you <b>soon</b>\n" in text
    assert "<script>" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; see you &lt;b&gt;soon&lt;/b&gt;" in html
    assert "Thanks!<br>&lt;script&gt;" in html


def test_names_are_escaped_in_the_html_and_kept_on_one_line(app):
    subject, text, html = _email(school_name="A & B <Academy>\r\nBcc: x@example.com", learner_name="<Léa>\n")
    assert "\n" not in subject and "\r" not in subject and subject.startswith("A & B <Academy> Bcc: x@example.com asks")
    assert "A &amp; B &lt;Academy&gt;" in html and "Hello &lt;Léa&gt;," in html and "<Academy>" not in html


def test_the_learners_locale_not_the_requests(app, host):
    host.locale = "en"
    with app.test_request_context():
        assert current_locale() == "en"
        subject, _text, _html = _email(locale="fr")
        assert subject.startswith("École Élan vous demande de régler") and current_locale() == "en"
    host.locale = "fr"
    with app.test_request_context():
        assert _email(locale="en")[0].startswith("École Élan asks you to pay")


@pytest.mark.parametrize("locale, amount, due", [
    ("en_GB", "€49.90", "3 December 2026"), ("fr_CA", "49,90" + NBSP + "$", None), ("de", "€49.90", "December 3, 2026"),
])
def test_formats_follow_the_locale_in_the_language_of_the_message(app, locale, amount, due):
    money = Money(4990, "CAD" if locale == "fr_CA" else "EUR")
    subject = _email(locale=locale, amount=money)[0]
    assert amount in subject and (due is None or due in subject)


def test_zero_decimal_currencies(app):
    assert "¥8,000" in _email(amount=Money(8000, "JPY"))[0]


def test_without_learner_name_or_invoice_number(app):
    _subject, text, _html = _email(learner_name="", invoice_number=None)
    assert text.startswith("Hello,\n") and "Invoice" not in text


@pytest.mark.parametrize("changes", [{"school_name": "  "}, {"link": "javascript:alert(1)"}, {"link": LINK + " x"},
                                     {"link": "https://a.test/\"onmouseover=\"x"}])
def test_refused_inputs(app, changes):
    with pytest.raises(InvalidMessage):
        _email(**changes)


def test_a_composed_email_can_be_queued_and_sent(app, db):
    subject, text, html = _email(locale="fr", message="À bientôt")
    message = messages.queue(db.session, channel=Channel.EMAIL, recipient="lea@example.com", subject=subject,
                             body=text, html=html, idempotency_key="request-1-email")
    db.session.commit()
    db.session.refresh(message)
    assert message.status == MessageStatus.SENT and messages.content(message) == (text, html)


def test_a_host_may_override_the_layout(app):
    # the host's own templates come first, as its templates folder does
    app.jinja_env.loader = ChoiceLoader([DictLoader({"lms_stripe/messages/payment_request.txt": "{{ lead }} / {{ link }}"}),
                                         app.jinja_env.loader])
    assert _email()[1] == f"École Élan asks you to pay €49.90 by December 3, 2026. / {LINK}\n"


# -- SMS -------------------------------------------------------------------------------------------------

def test_an_sms_in_english_fits_one_gsm7_part(app):
    text = _sms()
    assert text == f"École Élan: €49.90 to pay by Dec 3, 2026. Invoice F-2026-0001. Pay: {LINK}"
    assert segments(text).count == 1 and segments(text).encoding == GSM7


def test_an_sms_in_french_keeps_gsm7(app):
    text = _sms(locale="fr", reminder=True, link="https://lms.test/p/abc")
    assert text == "École Élan - rappel : 49,90 € à régler au plus tard le 3 déc. 2026. Facture F-2026-0001. Payer : https://lms.test/p/abc"
    assert segments(text).encoding == GSM7  # no-break spaces and the dash replaced
    longer = _sms(locale="fr", reminder=True)  # no room left for the invoice number: it is left out
    assert longer == f"École Élan - rappel : 49,90 € à régler au plus tard le 3 déc. 2026. Payer : {LINK}"
    assert segments(longer).count == 1


def test_an_overdue_sms(app):
    assert "was due on Dec 3, 2026 and is overdue." in _sms(overdue=True)
    assert "paiement en retard." in _sms(locale="fr", overdue=True)


def test_the_note_is_shortened_before_the_invoice_number_and_never_the_amount_date_or_link(app):
    text = _sms(link="https://lms.test/p/abc", message="The course starts on Monday; please pay before so that we can "
                                                       "keep your seat, and bring your laptop.")
    assert segments(text).count == 1
    assert "€49.90" in text and "Dec 3, 2026" in text and text.endswith("Pay: https://lms.test/p/abc")
    assert "Invoice F-2026-0001." in text and "The course starts on Monday" in text and "laptop" not in text


def test_a_note_that_has_no_room_is_left_out(app):
    text = _sms(message="A note that will not fit next to this long link")
    assert "note" not in text and text.endswith(LINK) and "Invoice F-2026-0001." in text


def test_a_long_school_name_is_cut(app):
    text = _sms(school_name="The International Academy of Advanced Flask Studies")
    assert text.startswith("The International Academy...: €49.90")
