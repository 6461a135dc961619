"""A learner's access to a paid course, and the invoice status that follows refunds."""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .. import signals
from ..core import audit
from ..core.enums import AccessReason, AuditAction, InvoiceStatus, PurchaseStatus
from ..core.models import Invoice, Purchase, utcnow
from ..core.i18n import gettext as _
from ..core.state import PluginState
from ..core.txn import send_after_commit, transition
from ..errors import PaymentsError


def set_invoice_status(session, purchase: Purchase, status: InvoiceStatus, *, even_if_cancelled: bool = False) -> None:
    """Set the invoice's status unless it is already cancelled (a conditional write, never a stale one);
    ``even_if_cancelled``: the refund that cancelled it failed afterwards."""
    values: dict = {"status": status}
    if status == InvoiceStatus.CANCELLED:
        values["cancelled_at"] = utcnow()
    query = update(Invoice).where(Invoice.purchase_id == purchase.id)
    if not even_if_cancelled:
        query = query.where(Invoice.status != InvoiceStatus.CANCELLED)
    session.execute(query.values(**values).execution_options(synchronize_session="fetch"))


class AccessNotRestored(PaymentsError):
    status_code = 409


def restore_access(state: PluginState, purchase: Purchase, *, actor_id: str) -> None:
    """Give back access revoked with a cancellation whose refund failed (the learner kept their money's
    worth): the purchase is paid again and the learner enrolled again."""
    session, host = state.session, state.host
    if purchase.status != PurchaseStatus.CANCELLED:
        raise AccessNotRestored(_("The learner's access is not revoked."))
    try:
        with session.begin_nested():
            restored = transition(session, purchase, (PurchaseStatus.CANCELLED,), PurchaseStatus.PAID,
                                  cancelled_at=None)
    except IntegrityError:  # one live purchase per learner and course
        raise AccessNotRestored(_("The learner has bought this course again: their access is already back.")) from None
    if not restored:
        raise AccessNotRestored(_("The learner's access is not revoked."))
    user, course = host.get_user(purchase.user_id), host.get_course(purchase.course_id)
    if user is None or course is None:
        raise AccessNotRestored(_("The host no longer knows this learner or this course."))
    host.enroll(user, course)
    audit.record(session, AuditAction.ACCESS_RESTORED, actor_id=actor_id, user_id=purchase.user_id,
                 course_id=purchase.course_id, purchase_id=purchase.id)


def revoke_access(state: PluginState, purchase: Purchase, *, reason: AccessReason, actor_id: str | None = None) -> bool:
    """Cancel the purchase and remove the learner's access, once; the learner may buy again later."""
    session, host = state.session, state.host
    if not transition(session, purchase, (PurchaseStatus.PAID,), PurchaseStatus.CANCELLED, cancelled_at=utcnow()):
        return False
    session.refresh(purchase)
    user, course = host.get_user(purchase.user_id), host.get_course(purchase.course_id)
    if user is not None and course is not None:
        host.unenroll(user, course)
    invoice = session.scalar(select(Invoice).where(Invoice.purchase_id == purchase.id))
    audit.record(session, AuditAction.ACCESS_REVOKED, actor_id=actor_id, user_id=purchase.user_id,
                 course_id=purchase.course_id, purchase_id=purchase.id, reason=reason)
    send_after_commit(session, signals.purchase_cancelled, purchase=purchase, invoice=invoice, actor_id=actor_id,
                      reason=reason)
    send_after_commit(session, signals.access_revoked, user_id=purchase.user_id, course_id=purchase.course_id,
                      reason=reason)
    return True
