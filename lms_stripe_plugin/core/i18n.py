"""Translations of the plugin's own strings. The locale comes from the host (`Host.get_locale`).

Catalogs are the ``.po`` files under ``translations/``, compiled in memory on first use, so a source
checkout needs no build step. English is the source language.
"""
from __future__ import annotations

import gettext as _gettext
import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, Translations
from flask import current_app, has_app_context, has_request_context, request

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
LOCALES = ("en", "fr")
DEFAULT_LOCALE = "en"


@lru_cache(maxsize=None)
def _translations(locale: str) -> _gettext.NullTranslations:
    po_path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return _gettext.NullTranslations()
    with po_path.open("rb") as fp:
        catalog = read_po(fp, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def normalize_locale(value: str | None) -> str:
    language = (value or "").replace("-", "_").split("_")[0].lower()
    return language if language in LOCALES else DEFAULT_LOCALE


def current_locale() -> str:
    """The host's locale for this request, reduced to a language the plugin ships."""
    if not has_app_context():
        return DEFAULT_LOCALE
    if has_request_context() and "lms_stripe.locale" in request.environ:
        return request.environ["lms_stripe.locale"]
    ext = current_app.extensions.get("lms_stripe")
    locale = normalize_locale(ext.host.get_locale() if ext else None)
    if has_request_context():
        request.environ["lms_stripe.locale"] = locale
    return locale


def gettext(msgid: str, /, **variables) -> str:
    text = _translations(current_locale()).gettext(msgid)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, /, **variables) -> str:
    variables.setdefault("num", n)
    return _translations(current_locale()).ngettext(singular, plural, n) % variables


def lazy_gettext(msgid: str, /, **variables) -> LazyProxy:
    return LazyProxy(gettext, msgid, enable_cache=False, **variables)


def N_(msgid: str, /) -> str:
    """Mark a string for translation where it is defined; it is translated where it is shown."""
    return msgid


_ = gettext


class LocaleText:
    """The plugin's translations in one given locale, whatever the current request's.

    A message to a learner is written in the learner's language even when an administrator's click, in
    another language, or a job without a request sends it: ``_ = in_locale("fr").gettext``.
    """

    def __init__(self, locale: str | None):
        self.locale = normalize_locale(locale)
        self._catalog = _translations(self.locale)

    def gettext(self, msgid: str, /, **variables) -> str:
        text = self._catalog.gettext(msgid)
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, n: int, /, **variables) -> str:
        variables.setdefault("num", n)
        return self._catalog.ngettext(singular, plural, n) % variables


def in_locale(locale: str | None) -> LocaleText:
    """The plugin's translations in ``locale`` (reduced to a language the plugin ships)."""
    return LocaleText(locale)
