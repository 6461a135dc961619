"""Receivers for the host's named signals. Thin: they find the app's plugin state and call services.

Receivers are connected once per process; each answers only for apps that registered the plugin, so
two apps in one process keep their own configuration.
"""
from __future__ import annotations

from typing import Any, Callable

from blinker import signal

from .. import host as contract
from . import catalog, course, enrollment

_RECEIVERS: dict[str, Callable[..., Any]] = {
    contract.COURSE_SETTINGS_FORM: course.settings_form,
    contract.COURSE_SETTINGS_SAVED: course.settings_saved,
    contract.CATALOG_RENDERING: catalog.rendering,
    contract.CATALOG_FILTERING: catalog.filtering,
    contract.COURSE_DETAIL_RENDERING: course.detail_rendering,
    contract.ENROLLMENT_REQUESTED: enrollment.requested,
}


def connect() -> None:
    """Connect every receiver to its signal (blinker ignores a second connection of the same function)."""
    for name, receiver in _RECEIVERS.items():
        signal(name).connect(receiver, weak=False)


def disconnect() -> None:
    for name, receiver in _RECEIVERS.items():
        signal(name).disconnect(receiver)
