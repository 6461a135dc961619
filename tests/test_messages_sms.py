"""SMS: numbers read as E.164, lengths counted as the network counts them, texts fitted to one SMS, and the
backends: console and file for development, Twilio (its HTTP stubbed by responses)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from urllib.parse import parse_qs

import pytest
import requests
import responses
import sqlalchemy as sa

from lms_stripe_plugin import messages
from lms_stripe_plugin.core.enums import Channel, MessageStatus
from lms_stripe_plugin.core.models import Message
from lms_stripe_plugin.host import OPTIONAL_METHODS, REQUIRED_METHODS
from lms_stripe_plugin.messages.errors import InvalidRecipient
from lms_stripe_plugin.messages.segments import GSM7, UCS2, Segments, plain_sms, segments, sms_text
from lms_stripe_plugin.messages.sms import ConsoleSms, TwilioSms, sms_backend

SID, TOKEN = "AC" + "0123456789abcdef" * 2, "twilio-auth-token-s3cret"
TWILIO = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"


# -- phone numbers -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, region, e164", [
    ("+33 6 12 34 56 78", None, "+33612345678"),
    ("+33612345678", "US", "+33612345678"),  # an international number ignores the region
    ("06 12 34 56 78", "FR", "+33612345678"),
    ("06.12.34.56.78", "fr", "+33612345678"),
    ("0470 12 34 56", "BE", "+32470123456"),
    ("(415) 555-2671", "US", "+14155552671"),  # the US does not tell mobiles from landlines
    ("+49 151 23456789", None, "+4915123456789"),
])
def test_numbers_are_normalised_to_e164(raw, region, e164):
    assert messages.normalize_phone(raw, region=region) == e164


@pytest.mark.parametrize("raw, region, code", [
    ("06 12 34 56 78", None, "phone"),  # national, and no region to read it in
    ("+33 6 12", None, "phone_invalid"),
    ("+33 7 00 00 00 00", None, "phone_invalid"),
    ("0612345678", "BE", "phone_invalid"),  # a French mobile read as Belgian
    ("+33 1 23 45 67 89", None, "phone_not_mobile"),  # a landline
    ("+33 800 123 456", None, "phone_not_mobile"),  # toll-free
    ("call me", "FR", "phone"),
    ("", "FR", "phone"),
    ("+33 6 12 34 56 78\nBcc", None, "phone"),
    ("+" + "1" * 100, None, "phone"),
])
def test_bad_numbers_are_refused(raw, region, code):
    with pytest.raises(InvalidRecipient) as caught:
        messages.normalize_phone(raw, region=region)
    assert caught.value.code == code


def test_refusals_are_in_the_readers_language(app, host):
    host.locale = "fr"
    with app.test_request_context(), pytest.raises(InvalidRecipient, match="ne peut pas recevoir de SMS"):
        messages.normalize_phone("+33 1 23 45 67 89")


def test_the_host_gives_a_phone_number_if_it_can(host):
    assert messages.host_phone(host, object()) is None  # the minimal host has no user_phone
    host.user_phone = lambda user: " +33 6 12 34 56 78 "
    assert messages.host_phone(host, object()) == "+33 6 12 34 56 78"
    host.user_phone = lambda user: ""
    assert messages.host_phone(host, object()) is None


def test_user_phone_is_optional_for_the_host():
    assert "user_phone" in OPTIONAL_METHODS and "user_phone" not in REQUIRED_METHODS


# -- segments ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("", Segments(GSM7, 0, 0)),
    ("a" * 160, Segments(GSM7, 160, 1)),
    ("a" * 161, Segments(GSM7, 161, 2)),
    ("a" * 306, Segments(GSM7, 306, 2)),
    ("a" * 307, Segments(GSM7, 307, 3)),
    ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà", Segments(GSM7, 61, 1)),
    ("€" * 80, Segments(GSM7, 160, 1)),  # the extension table: two septets each
    ("€" * 81, Segments(GSM7, 162, 2)),  # 76 fit in a part of 153 septets, 5 in the second
    ("a" * 159 + "{", Segments(GSM7, 161, 2)),
    ("^{}\\[~]|\f", Segments(GSM7, 18, 1)),
    ("a" * 152 + "€" + "a" * 152, Segments(GSM7, 306, 3)),  # an escape is never split: 152 | 2 + 151 | 1
    ("ç", Segments(UCS2, 1, 1)),  # the lower-case c cedilla is not GSM-7 (the capital is)
    ("ê" * 70, Segments(UCS2, 70, 1)),
    ("ê" * 71, Segments(UCS2, 71, 2)),
    ("ê" * 134, Segments(UCS2, 134, 2)),
    ("ê" * 135, Segments(UCS2, 135, 3)),
    ("😀" * 35, Segments(UCS2, 70, 1)),  # outside the BMP: two code units each
    ("😀" * 36, Segments(UCS2, 72, 2)),
    ("a" * 66 + "😀" + "a" * 66, Segments(UCS2, 134, 3)),  # a surrogate pair is never split: 66 | 2 + 65 | 1
])
def test_segments_are_counted_as_the_network_counts_them(text, expected):
    assert segments(text) == expected


def test_two_parts_of_euro_signs():
    assert segments("€" * 76).count == 1 and segments("€" * 153).count == 3
    assert segments("€" * 76 * 2).count == 2  # 152 septets each: 76 signs a part


def test_typographic_characters_become_gsm7_look_alikes():
    assert plain_sms("49,90\u00a0€ «\u202fmerci\u202f» – l’école…\n ok") == '49,90 € " merci " - l\'école... ok'
    assert segments(plain_sms("Prix : 49,90\u00a0€")).encoding == GSM7


def test_sms_text_keeps_fixed_parts_and_shortens_optional_ones_first():
    template = "%(school)s: %(amount)s by %(due)s. %(note)s %(invoice)s Pay: %(link)s"
    fixed = {"school": "École Élan", "amount": "49,90\u00a0€", "due": "3 déc. 2026",
             "link": "https://lms.example.org/payments/pay/AbCdEf0123456789"}
    note = "Merci de régler rapidement, le stage commence bientôt et les places sont limitées cette année."
    text = sms_text(template, fixed=fixed, optional=[("note", note), ("invoice", "Invoice F-2026-0001.")])
    assert segments(text).count == 1 and segments(text).encoding == GSM7
    assert "49,90 €" in text and "3 déc. 2026" in text and text.endswith(fixed["link"])
    assert "Invoice F-2026-0001." in text  # the note was shortened first, and enough
    assert "Merci de régler" in text and "..." in text and "limitées" not in text


def test_sms_text_leaves_out_what_cannot_be_kept_and_goes_in_parts_if_it_must():
    template = "%(amount)s by %(due)s. %(note)s Pay: %(link)s"
    fixed = {"amount": "49,90 €", "due": "3 Dec 2026", "link": "https://lms.example.org/pay/" + "x" * 150}
    text = sms_text(template, fixed=fixed, optional=[("note", "A note that has no room at all")])
    assert "note" not in text and fixed["link"] in text and segments(text).count == 2


def test_a_note_outside_gsm7_is_cut_so_that_the_whole_fits_seventy_units():
    template = "%(amount)s by %(due)s. %(note)s %(link)s"
    fixed = {"amount": "€5", "due": "3 Dec", "link": "https://x.test/p/abc"}
    text = sms_text(template, fixed=fixed, optional=[("note", "Ça marche très bien, à bientôt ! " * 5)])
    assert segments(text).count == 1 and segments(text).encoding == UCS2 and text.endswith(fixed["link"])


def test_a_short_text_is_left_whole():
    assert sms_text("%(a)s and %(b)s", fixed={"a": "x"}, optional=[("b", "y")]) == "x and y"


# -- backends ----------------------------------------------------------------------------------------------

def _queue_sms(db, key="sms-1", recipient="+33 6 12 34 56 78", body="École Élan: 49,90 € by 3 Dec 2026. Pay: https://lms.test/p/t"):
    message = messages.queue(db.session, channel=Channel.SMS, recipient=recipient, subject="Payment request",
                             body=body, idempotency_key=key)
    db.session.commit()
    db.session.expire_all()
    return db.session.get(Message, message.id)


def test_the_console_backend_logs_the_sms(app, db, caplog):
    assert isinstance(sms_backend(app), ConsoleSms)  # auto, without a Twilio account
    with caplog.at_level(logging.INFO, logger="lms_stripe_plugin.messages"):
        message = _queue_sms(db)
    assert message.status == MessageStatus.SENT
    assert "+33612345678" in caplog.text and "49,90 € by 3 Dec 2026" in caplog.text and "GSM-7, 1 part" in caplog.text


def test_the_file_backend_appends_json_lines(app, db, tmp_path):
    path = tmp_path / "sms.jsonl"
    app.config.update(LMS_STRIPE_SMS_BACKEND="file", LMS_STRIPE_SMS_FILE=str(path))
    _queue_sms(db, key="a")
    _queue_sms(db, key="b", body="Second")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(line["to"], line["body"], line["parts"]) for line in lines] == [
        ("+33612345678", "École Élan: 49,90 € by 3 Dec 2026. Pay: https://lms.test/p/t", 1), ("+33612345678", "Second", 1)]


@pytest.fixture
def twilio_app(app):
    app.config.update(LMS_STRIPE_TWILIO_ACCOUNT_SID=SID, LMS_STRIPE_TWILIO_AUTH_TOKEN=TOKEN,
                      LMS_STRIPE_TWILIO_FROM="+33757000000")
    return app


@pytest.fixture
def twilio_http():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def _twilio_message(**changes):
    body = {"sid": "SM" + "0" * 32, "account_sid": SID, "status": "queued", "to": "+33612345678",
            "from": "+33757000000", "body": "…", "num_segments": "1", "error_code": None, "error_message": None}
    body.update(changes)
    return body


def test_twilio_sends_the_sms(twilio_app, db, twilio_http):
    assert isinstance(sms_backend(twilio_app), TwilioSms)  # auto, with the account
    twilio_http.add(responses.POST, TWILIO, json=_twilio_message(), status=201)
    message = _queue_sms(db)
    assert message.status == MessageStatus.SENT
    request = twilio_http.calls[0].request
    form = {key: values[0] for key, values in parse_qs(request.body).items()}
    assert form == {"To": "+33612345678", "From": "+33757000000",
                    "Body": "École Élan: 49,90 € by 3 Dec 2026. Pay: https://lms.test/p/t"}
    assert request.headers["Authorization"].startswith("Basic ")


def test_twilio_through_a_messaging_service(twilio_app, db, twilio_http):
    twilio_app.config["LMS_STRIPE_TWILIO_FROM"] = "MG" + "a" * 32
    twilio_http.add(responses.POST, TWILIO, json=_twilio_message(), status=201)
    _queue_sms(db)
    form = parse_qs(twilio_http.calls[0].request.body)
    assert form["MessagingServiceSid"] == ["MG" + "a" * 32] and "From" not in form


def test_a_twilio_refusal_is_recorded_without_the_token(twilio_app, db, twilio_http, caplog):
    twilio_http.add(responses.POST, TWILIO, status=400, json={
        "code": 21211, "message": "Invalid 'To' Phone Number: +336XXXX5678", "status": 400,
        "more_info": "https://www.twilio.com/docs/errors/21211"})
    with caplog.at_level(logging.DEBUG):
        message = _queue_sms(db)
    assert message.status == MessageStatus.FAILED and message.attempts == 1
    assert message.last_error.startswith("Twilio refused the SMS (HTTP 400, error 21211): ")
    assert message.last_error.endswith("Invalid 'To' Phone Number: +336XXXX5678")
    assert TOKEN not in caplog.text and TOKEN not in repr(sms_backend(twilio_app))


def test_twilio_unreachable_is_a_failure(twilio_app, db, twilio_http):
    twilio_http.add(responses.POST, TWILIO, body=requests.ConnectionError("connection refused"))
    message = _queue_sms(db)
    assert message.status == MessageStatus.FAILED and message.last_error == "Twilio could not be reached (ConnectionError)."


def test_twilio_without_its_settings_fails_with_what_to_set(app, db):
    app.config.update(LMS_STRIPE_SMS_BACKEND="twilio", LMS_STRIPE_TWILIO_ACCOUNT_SID=SID)
    message = _queue_sms(db)
    assert message.status == MessageStatus.FAILED
    assert "LMS_STRIPE_TWILIO_AUTH_TOKEN, LMS_STRIPE_TWILIO_FROM" in message.last_error


def test_twilio_is_imported_only_when_chosen():
    code = ("import sys, lms_stripe_plugin, lms_stripe_plugin.messages; "
            "print(any(name == 'twilio' or name.startswith('twilio.') for name in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_national_numbers_are_read_in_the_schools_country_by_default(app, db):
    app.config.update(LMS_STRIPE_SMS_DEFAULT_REGION=None, LMS_STRIPE_TAX_COUNTRY="BE")
    assert _queue_sms(db, recipient="0470 12 34 56").recipient == "+32470123456"
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 1
