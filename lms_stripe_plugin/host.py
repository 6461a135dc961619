"""The host contract: the `Host` protocol the LMS implements, and the names of the signals it sends.

Signals are blinker *named* signals, so the host sends them without importing the plugin::

    from blinker import signal
    results = signal("lms.catalog.rendering").send(current_app._get_current_object(),
                                                   courses=courses, user=user)

Users and courses are the host's own objects; the plugin only ever stores their ids as strings.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

from .errors import HostContractError

COURSE_SETTINGS_FORM = "lms.course.settings_form"
COURSE_SETTINGS_SAVED = "lms.course.settings_saved"
CATALOG_RENDERING = "lms.catalog.rendering"
CATALOG_FILTERING = "lms.catalog.filtering"
COURSE_DETAIL_RENDERING = "lms.course.detail_rendering"
ENROLLMENT_REQUESTED = "lms.enrollment.requested"

HOST_SIGNALS = (
    COURSE_SETTINGS_FORM,
    COURSE_SETTINGS_SAVED,
    CATALOG_RENDERING,
    CATALOG_FILTERING,
    COURSE_DETAIL_RENDERING,
    ENROLLMENT_REQUESTED,
)

#: Audiences a course can be sold to, narrowest first.
AUDIENCES = ("internal", "partner", "public")


@runtime_checkable
class Host(Protocol):
    """What the plugin needs from the LMS. Every method is required (optional ones: `OptionalHostMethods`)."""

    def current_user(self) -> Any | None:
        """The signed-in user of this request, or None."""

    def get_user(self, user_id: str) -> Any | None:
        """The user with this id, or None."""

    def get_course(self, course_id: str) -> Any | None:
        """The course with this id, or None."""

    def user_id(self, user: Any) -> str:
        """A user's id, as a string."""

    def course_id(self, course: Any) -> str:
        """A course's id, as a string."""

    def course_title(self, course: Any) -> str:
        """The course title shown to learners and printed on the invoice."""

    def course_url(self, course: Any) -> str:
        """The absolute or root-relative URL of the course page."""

    def user_email(self, user: Any) -> str:
        """The user's email address (sent to Stripe as the customer's)."""

    def user_display_name(self, user: Any) -> str:
        """The user's name as shown to administrators."""

    def user_audience(self, user: Any) -> str:
        """Which audience the user belongs to: "internal", "partner" or "public"."""

    def can_purchase(self, user: Any, course: Any) -> bool:
        """The host's own perimeter check: may this user buy this course at all?"""

    def can_manage_payments(self, user: Any) -> bool:
        """Is the user an administrator of payments (settings, invoices, cancellations)?"""

    def can_enroll_others(self, user: Any, course: Any) -> bool:
        """May the user enroll other people in this course from the back office?"""

    def is_enrolled(self, user: Any, course: Any) -> bool:
        """Is the user enrolled in the course?"""

    def enroll(self, user: Any, course: Any) -> None:
        """Enroll the user. Called after payment; must not send ``lms.enrollment.requested``; idempotent."""

    def unenroll(self, user: Any, course: Any) -> None:
        """Remove the user's access to the course; idempotent."""

    def get_locale(self) -> str:
        """The locale of the current request, e.g. "fr" or "en"."""


REQUIRED_METHODS = tuple(
    name for name, value in vars(Host).items() if callable(value) and not name.startswith("_")
)


class OptionalHostMethods(Protocol):
    """Methods a host may add; without one, the plugin uses the default its docstring gives.

    `check_host` does not ask for them.
    """

    def user_phone(self, user: Any) -> str | None:
        """The learner's mobile number, for payment requests and reminders by SMS: international
        (``+33 6 12 34 56 78``) or national in ``LMS_STRIPE_SMS_DEFAULT_REGION``; None if unknown.
        Default (method absent): None, so the learner gets e-mails only."""

    def sign_in_url(self, next_url: str) -> str | None:
        """Where a visitor signs in, then comes back to ``next_url`` (a page of the site: the course, or the
        plugin's page that asked): a root-relative or absolute http(s) address, or None for no link.
        Default (method absent): ``LMS_STRIPE_SIGN_IN_URL`` with ``?next=<next_url>`` added, else no link
        ("Sign in to buy" is then said without one)."""

    def course_start(self, course: Any) -> date | None:
        """The day the course starts, or None if it has no start date. A deposit's balance may be due N days
        before it. Default (method absent): None, so "days before the course starts" cannot be chosen."""

    def preferred_currency(self, user: Any) -> str | None:
        """The currency a learner would rather see prices and pay in (a three-letter code), when the school
        accepts several; one it does not accept, or None, is passed over. Used until the learner chooses one
        with the catalog's currency switcher. Default (method absent): the currency of the country of
        ``get_locale()`` ("fr_CH": CHF) when the school accepts it, else the school's default currency."""


    def current_school(self) -> str | None:
        """Platform mode (``LMS_STRIPE_PLATFORM``): the school (tenant) the current request belongs to, as a
        string id of at most 64 characters that never changes (the school's database id, not its name). The
        plugin's rows are the school's, its settings and Stripe account too, and one school's pages never show
        another's. Default (method absent, or None): one school for the whole app."""

    def course_school(self, course: Any) -> str | None:
        """Platform mode: the school a course belongs to (its id as `current_school` gives it). A course of
        another school than the request's is never priced, sold nor enrolled in through the plugin. Default
        (method absent): every course the host gives belongs to the request's school."""


    def user_in_school(self, user: Any, school: str) -> bool:
        """Platform mode: whether the user belongs to the school (a learner of several schools belongs to
        each). An administrator bills, links and credits only the learners of their school. Default (method
        absent): every user does."""


OPTIONAL_METHODS = tuple(
    name for name, value in vars(OptionalHostMethods).items() if callable(value) and not name.startswith("_")
)


def check_host(host: Any) -> Host:
    """The adapter, once checked: raise `HostContractError` naming every `Host` method it lacks."""
    if host is None:
        raise HostContractError(
            "StripePayments needs a host adapter: pass host=... implementing lms_stripe_plugin.Host."
        )
    missing = [name for name in REQUIRED_METHODS if not callable(getattr(host, name, None))]
    if missing:
        raise HostContractError(
            f"The host adapter {type(host).__name__} does not implement "
            f"{', '.join(missing)} of lms_stripe_plugin.Host; add "
            f"{'this method' if len(missing) == 1 else 'these methods'}."
        )
    return host


def course_start(host: Any, course: Any) -> date | None:
    """The course's start date as the host gives it (`OptionalHostMethods.course_start`), or None."""
    method = getattr(host, "course_start", None)
    if not callable(method) or course is None:
        return None
    start = method(course)
    if start is None:
        return None
    if not isinstance(start, date):
        raise HostContractError(f"{type(host).__name__}.course_start must return a datetime.date or None, "
                                f"not {type(start).__name__}.")
    return start.date() if isinstance(start, datetime) else start


def audience_allows(course_audience: str, user_audience: str) -> bool:
    """A course for an audience is open to that audience and the narrower ones (internal ⊂ partner ⊂ public)."""
    if course_audience not in AUDIENCES or user_audience not in AUDIENCES:
        return False
    return AUDIENCES.index(user_audience) <= AUDIENCES.index(course_audience)
