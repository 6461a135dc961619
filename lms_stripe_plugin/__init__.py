"""lms-stripe-plugin: sell the courses of a Flask LMS with Stripe.

    from lms_stripe_plugin import StripePayments
    payments = StripePayments(app, db=db, host=MyHost())
"""
from __future__ import annotations

from . import signals
from .errors import (CardDeclined, ConfigurationError, Forbidden, GatewayError, HostContractError,
                     NotFound, NotPurchasable, PaymentsError, UnreadableSecret, ValidationFailed,
                     WebhookSignatureError)
from .extension import StripePayments
from .hooks.catalog import course_labels
from .host import AUDIENCES, HOST_SIGNALS, Host
from .money import Money

__all__ = [
    "StripePayments", "Host", "Money", "signals", "AUDIENCES", "HOST_SIGNALS", "course_labels",
    "PaymentsError", "ConfigurationError", "HostContractError", "GatewayError", "CardDeclined",
    "NotPurchasable", "NotFound", "Forbidden", "ValidationFailed", "WebhookSignatureError", "UnreadableSecret",
]
