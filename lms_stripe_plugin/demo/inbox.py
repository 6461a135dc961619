"""The demo's inbox: the e-mails and SMS the plugin sent to a user, read back from the files its "file"
backends write (an mbox and JSON lines), so that a visitor can open a payment request's link."""
from __future__ import annotations

import json
import mailbox
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from markupsafe import Markup, escape

#: The most messages the page lists, newest first.
MAX_SHOWN = 20
_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class Received:
    channel: str  # "email" | "sms"
    subject: str
    body: str
    at: str

    def linked(self, base_url: str) -> Markup:
        """The text, escaped, with the addresses of this LMS made links (and nothing else)."""
        parts, last = [], 0
        for found in _URL.finditer(self.body):
            parts.append(escape(self.body[last:found.start()]))
            url = found.group(0)
            parts.append(Markup('<a href="{0}">{0}</a>').format(url) if url.startswith(base_url) else escape(url))
            last = found.end()
        parts.append(escape(self.body[last:]))
        return Markup("").join(parts)


def for_user(mail_file: str | None, sms_file: str | None, *, email: str | None, phone: str | None) -> list[Received]:
    """What was sent to ``email`` or ``phone``, newest first, at most `MAX_SHOWN`."""
    found: list[Received] = []
    if email and mail_file and Path(mail_file).exists():
        found += [_email(m) for m in mailbox.mbox(mail_file) if email.lower() in str(m.get("To", "")).lower()]
    if phone and sms_file and Path(sms_file).exists():
        with open(sms_file, encoding="utf-8") as lines:
            for line in lines:
                sms = json.loads(line)
                if sms.get("to") == phone:
                    found.append(Received("sms", "", str(sms.get("body", "")), str(sms.get("at", ""))))
    return sorted(found, key=lambda r: r.at, reverse=True)[:MAX_SHOWN]


def _email(message: Message) -> Received:
    subject = str(make_header(decode_header(message.get("Subject", ""))))
    text = ""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            text = payload.decode(part.get_content_charset() or "utf-8", "replace") if isinstance(payload, bytes) else ""
            break
    return Received("email", subject, text, _iso(message.get("Date", "")))


def _iso(date_header: str) -> str:
    try:
        return parsedate_to_datetime(date_header).isoformat()
    except (TypeError, ValueError):
        return ""
