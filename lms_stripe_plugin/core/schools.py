"""Schools (tenants): in platform mode every plugin row belongs to one school, and every query is scoped by it.

The school of a request is the host's (`OptionalHostMethods.current_school`); a webhook event's is the school
whose connected account it came from; a job's is the one that asked for it. Work outside a request names its
school with `scope`. Rows get the school in force when they are inserted (`SchoolScoped.school_id`), and
every ORM statement on them (select, update, delete; relationship loads included) is given the condition
``school_id = <the school in force>`` by the session (`install`), so that one school's pages, jobs and
handlers never read nor change another's rows. Core statements on a table name their school themselves: they
are built with `its_own` and run with `execute`, which gives them the school in force.

Outside platform mode there is one school, ``""``: nothing is added to any statement.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

import sqlalchemy as sa
from flask import current_app, has_app_context, has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import Mapped, ORMExecuteState, declared_attr, mapped_column, with_loader_criteria

from ..errors import HostContractError

#: The one school of an app outside platform mode (and of a platform whose host names none).
DEFAULT = ""
#: The execution option that lets a statement see every school's rows (routing an event to its school, the
#: jobs that go over every school).
ALL_SCHOOLS = "lms_stripe_all_schools"

_forced: ContextVar[str | None] = ContextVar("lms_stripe_school", default=None)
_REQUEST_KEY = "lms_stripe.school"
#: Set while the host names the request's school (its queries are its own: they are not scoped).
_resolving: ContextVar[bool] = ContextVar("lms_stripe_resolving_school", default=False)


def platform_mode() -> bool:
    """The app runs in platform mode (``LMS_STRIPE_PLATFORM``); outside an app, no."""
    return has_app_context() and bool(current_app.config.get("LMS_STRIPE_PLATFORM"))


def current() -> str:
    """The school in force: the one a `scope` names, else in platform mode the request's (the host's
    ``current_school()``), else `DEFAULT`."""
    forced = _forced.get()
    if forced is not None:
        return forced
    if not platform_mode() or not has_request_context():
        return DEFAULT
    found = request.environ.get(_REQUEST_KEY)
    if found is None:
        found = request.environ[_REQUEST_KEY] = _host_school()
    return found


def _host_school() -> str:
    method = getattr(current_app.extensions["lms_stripe"].host, "current_school", None)
    if not callable(method):
        return DEFAULT
    token = _resolving.set(True)
    try:
        school = method()
    finally:
        _resolving.reset(token)
    if school is None:
        return DEFAULT
    if not isinstance(school, str) or not 0 < len(school) <= 64:
        raise HostContractError("Host.current_school must return a school id (a string of 1 to 64 characters) "
                                "or None.")
    return school


def adopt(school: str) -> None:
    """The rest of this request is school ``school``'s: a page a link's token opens, which names its school
    whoever opens it (signed in or not), unless a `scope` is in force."""
    if has_request_context() and _forced.get() is None:
        request.environ[_REQUEST_KEY] = school


def get(session, model, ident):
    """``session.get(model, ident)``, None for another school's row (one the session already holds is not read
    again, so the statement's condition cannot exclude it): what a page opens by the id in its address."""
    row = session.get(model, ident)
    if row is not None and platform_mode() and getattr(row, "school_id", None) not in (None, current()):
        return None
    return row


def by_token(session, statement):
    """The one row ``statement`` finds (by a link's token) in any school, whose school the rest of the request
    becomes (`adopt`); None if there is none."""
    row = session.scalar(statement.execution_options(**{ALL_SCHOOLS: True}))
    if row is not None:
        adopt(row.school_id)
    return row


@contextmanager
def scope(school: str) -> Iterator[str]:
    """Run the block as school ``school``: its rows only, and new rows its own."""
    token = _forced.set(school)
    try:
        yield school
    finally:
        _forced.reset(token)


def owns_course(host: Any, course: Any) -> bool:
    """The course belongs to the school in force, as the host says (`OptionalHostMethods.course_school`);
    always outside platform mode, or when the host does not say."""
    method = getattr(host, "course_school", None)
    if not platform_mode() or course is None or not callable(method):
        return True
    return (method(course) or DEFAULT) == current()


def member(host: Any, user_id: str) -> Any | None:
    """The host's user ``user_id`` if they belong to the school in force (`OptionalHostMethods.user_in_school`;
    always outside platform mode, or when the host does not say), else None."""
    user = host.get_user(user_id)
    method = getattr(host, "user_in_school", None)
    if user is None or not platform_mode() or not callable(method):
        return user
    return user if method(user, current()) else None


class SchoolScoped:
    """A table whose rows belong to a school."""

    @declared_attr
    def school_id(cls) -> Mapped[str]:
        return mapped_column(sa.String(64), default=current, server_default="", nullable=False)


def its_own(table: sa.FromClause) -> sa.ColumnElement[bool]:
    """The condition that keeps a Core statement on ``table`` to one school's rows: the school `execute` names
    (the ORM's scoping does not see Core statements)."""
    return table.c.school_id == sa.bindparam("school")


def execute(session, model: Any, statement: Any, params: dict[str, Any] | None = None) -> sa.CursorResult:
    """Run a Core statement built with `its_own` as the school in force, on the session's connection for
    ``model``'s table (in its transaction, nothing flushed)."""
    connection = session.connection(bind_arguments={"mapper": model})
    return connection.execute(statement, {**(params or {}), "school": current()})


def _scope_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load or not platform_mode():
        return
    if state.execution_options.get(ALL_SCHOOLS):
        return
    if _resolving.get():
        return  # the host reading its own tables to name the request's school
    school = current()
    state.statement = state.statement.options(
        with_loader_criteria(SchoolScoped, lambda cls: cls.school_id == school, include_aliases=True))


def install(session) -> None:
    """Scope the ORM statements of ``session`` (the host's scoped session, or its factory) by school."""
    if not event.contains(session, "do_orm_execute", _scope_statement):
        event.listen(session, "do_orm_execute", _scope_statement)
