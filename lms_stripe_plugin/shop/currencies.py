"""The currency a learner sees prices and pays in, when the school accepts several.

A school that accepts one currency shows each course in its own offer's currency, as it always did: `of_viewer`
answers None. One that accepts several (the payment settings' "Other currencies accepted") shows every course
in the reader's currency, or says it is not sold in it. The reader's currency is, first found:

1. the one they chose with the catalog's switcher (`choose`): kept for a signed-in learner in
   ``lms_stripe_currency_choices``, and for everyone in the host's session cookie, so that a catalog page costs
   no query for it once known;
2. the host's ``preferred_currency(user)`` (`OptionalHostMethods`), when it is one the school accepts;
3. the currency of the country of the host's locale ("fr_CH" → CHF, "en_US" → USD), when accepted;
4. the school's default currency.
"""
from __future__ import annotations

from babel.core import Locale, UnknownLocaleError
from babel.numbers import get_territory_currencies
from flask import has_request_context, request, session as cookie
from sqlalchemy import select

from ..core.models import CurrencyChoice
from ..core.state import PluginState
from ..errors import HostContractError

#: The key of the host's session cookie holding [user id ("" for a visitor), currency].
COOKIE_KEY = "lms_stripe_currency"
_REQUEST_CACHE = "lms_stripe.currency"


def of_viewer(state: PluginState, settings, user) -> str | None:
    """The currency ``user`` (None: a visitor) sees prices in, or None when the school accepts one currency
    only (each course is then shown in its own offer's currency)."""
    if not settings.several_currencies:
        return None
    accepted = settings.currencies
    user_id = state.host.user_id(user) if user is not None else ""
    if has_request_context():
        cached = request.environ.get(_REQUEST_CACHE)
        if cached is not None and cached[0] == user_id and cached[1] in accepted:
            return cached[1]
    found = _remembered(user_id, accepted)
    if found is None:
        if user_id:
            chosen = state.session.scalar(select(CurrencyChoice.currency).where(CurrencyChoice.user_id == user_id))
            found = chosen if chosen in accepted else None
        if found is None:
            found = _default(state, user, accepted)
        if user_id:
            _remember(user_id, found)  # the next pages need no query
    if has_request_context():
        request.environ[_REQUEST_CACHE] = (user_id, found)
    return found


def choose(state: PluginState, settings, user, currency: str) -> bool:
    """Remember that ``user`` (None: a visitor, in their session cookie only) chose ``currency``, in the caller's
    transaction; False (nothing kept) when the school does not accept it."""
    if not settings.several_currencies or currency not in settings.currencies:
        return False
    user_id = state.host.user_id(user) if user is not None else ""
    if user_id:
        row = state.session.get(CurrencyChoice, user_id)
        if row is None:
            state.session.add(CurrencyChoice(user_id=user_id, currency=currency))
        else:
            row.currency = currency
    _remember(user_id, currency)
    if has_request_context():
        request.environ[_REQUEST_CACHE] = (user_id, currency)
    return True


def _remembered(user_id: str, accepted: tuple[str, ...]) -> str | None:
    if not has_request_context():
        return None
    kept = cookie.get(COOKIE_KEY)
    if isinstance(kept, list) and len(kept) == 2 and kept[0] == user_id and kept[1] in accepted:
        return kept[1]
    return None


def _remember(user_id: str, currency: str) -> None:
    if has_request_context():
        cookie[COOKIE_KEY] = [user_id, currency]


def _default(state: PluginState, user, accepted: tuple[str, ...]) -> str:
    host = state.host
    preferred = getattr(host, "preferred_currency", None)
    if callable(preferred) and user is not None:
        code = preferred(user)
        if code is not None and not isinstance(code, str):
            raise HostContractError(f"{type(host).__name__}.preferred_currency must return a currency code or "
                                    f"None, not {type(code).__name__}.")
        if code and code.upper() in accepted:
            return code.upper()
    for code in _locale_currencies(host.get_locale() if has_request_context() else None):
        if code in accepted:
            return code
    return accepted[0]


def _locale_currencies(locale: str | None) -> list[str]:
    """The currencies of the country of ``locale`` ("fr_CH": CHF), none for a language alone ("fr")."""
    try:
        territory = Locale.parse((locale or "").replace("-", "_")).territory if locale else None
    except (ValueError, TypeError, UnknownLocaleError):
        return []
    return list(get_territory_currencies(territory)) if territory else []
