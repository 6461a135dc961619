"""A learner's access to a paid course, and the invoice status that follows refunds."""
from __future__ import annotations

from sqlalchemy import select, update

from ..core.state import PluginState
from .. import signals
from ..core import audit
from ..core.enums import AccessReason, AuditAction, InvoiceStatus, PurchaseStatus
from ..core.models import Invoice, Purchase, utcnow
from ..core.txn import send_after_commit, transition


def set_invoice_status(session, purchase: Purchase, status: InvoiceStatus) -> None:
    """Set the invoice's status unless it is already cancelled (a conditional write, never a stale one)."""
    values: dict = {"status": status}
    if status == InvoiceStatus.CANCELLED:
        values["cancelled_at"] = utcnow()
    session.execute(update(Invoice).where(Invoice.purchase_id == purchase.id, Invoice.status != InvoiceStatus.CANCELLED)
                    .values(**values).execution_options(synchronize_session="fetch"))


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
