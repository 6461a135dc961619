"""The Stripe SDK's own logging. Its INFO and DEBUG lines carry the URLs and bodies of requests and
responses, learners' e-mail addresses among them: its logger is kept at WARNING unless the host asks."""
from __future__ import annotations

import logging
import os

import stripe

from ..core.logs import get_logger
from ..errors import ConfigurationError

SDK_LOGGER = "stripe"
log = get_logger(__name__)


def quiet_sdk_logger(level: str | int | None) -> None:
    """Set the SDK's logger to ``level`` (``LMS_STRIPE_SDK_LOG_LEVEL``) if given; else to WARNING, unless the
    host already set a level of its own on it. Neither the root logger nor its handlers are touched."""
    logger = logging.getLogger(SDK_LOGGER)
    if level is not None:
        logger.setLevel(_level(level))
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    if _console_logging():
        log.warning("STRIPE_LOG (or stripe.log) makes the Stripe SDK print every request and response to "
                    "stderr, learners' e-mail addresses among them, whatever the log levels: unset it outside "
                    "development.")


def _level(value: str | int) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelNamesMapping().get(str(value).strip().upper())
    if level is None:
        raise ConfigurationError(f"LMS_STRIPE_SDK_LOG_LEVEL: {value!r} is not a logging level "
                                 "(DEBUG, INFO, WARNING, ERROR, CRITICAL).")
    return level


def _console_logging() -> bool:
    return stripe.log in ("debug", "info") or os.environ.get("STRIPE_LOG") in ("debug", "info")
