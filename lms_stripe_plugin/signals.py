"""Signals the plugin sends, for hosts and observers.

Each is sent with the Flask app as sender. Keyword payloads:

- ``purchase_completed``: ``purchase`` (Purchase), ``user_id``, ``course_id``
- ``invoice_issued``: ``invoice`` (Invoice)
- ``purchase_cancelled``: ``purchase``, ``invoice``, ``actor_id``, ``reason``
- ``access_revoked``: ``user_id``, ``course_id``, ``reason`` (an `AccessReason`; ``balance_overdue``: a
  deposit's balance is overdue, and paying it sends ``access_restored``)
- ``access_restored``: ``user_id``, ``course_id``
- ``refund_failed``: ``refund`` (Refund), ``reason``
- ``payment_failed``: ``purchase``, ``reason``
- ``free_enrollment_recorded``: ``enrollment`` (FreeEnrollment)
"""
from __future__ import annotations

from blinker import Namespace

namespace = Namespace()

purchase_completed = namespace.signal("purchase_completed")
invoice_issued = namespace.signal("invoice_issued")
purchase_cancelled = namespace.signal("purchase_cancelled")
access_revoked = namespace.signal("access_revoked")
access_restored = namespace.signal("access_restored")
refund_failed = namespace.signal("refund_failed")
payment_failed = namespace.signal("payment_failed")
free_enrollment_recorded = namespace.signal("free_enrollment_recorded")
