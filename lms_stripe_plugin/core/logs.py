"""The plugin's loggers: every line they emit is cleared of e-mail addresses and Stripe secrets.

Stripe's error messages can echo the parameters sent (an e-mail address), and exceptions can carry
anything; a filter on each of the plugin's loggers rewrites the message and the traceback before any
handler of the host sees them.
"""
from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_SECRET = re.compile(r"\b((?:sk|rk)_(?:test|live)_|whsec_)[A-Za-z0-9+/=]*([A-Za-z0-9+/=]{4})")
_FORMATTER = logging.Formatter()


def redact(text: str) -> str:
    """``text`` without e-mail addresses, and with Stripe secret keys and signing secrets masked."""
    return _SECRET.sub(r"\1…\2", _EMAIL.sub("[email]", text))


class Redact(logging.Filter):
    """Rewrites a record's message and traceback with `redact`; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_REDACT = Redact()


def get_logger(name: str) -> logging.Logger:
    """The logger ``name`` (a module's ``__name__``), with the redacting filter."""
    logger = logging.getLogger(name)
    if _REDACT not in logger.filters:
        logger.addFilter(_REDACT)
    return logger
