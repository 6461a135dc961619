"""Encryption of secrets at rest (Stripe keys, webhook secrets) with Fernet.

The keys form one list, in this order: ``LMS_STRIPE_ENCRYPTION_KEYS`` (newest first),
``LMS_STRIPE_ENCRYPTION_KEY``, then keys derived from ``SECRET_KEY`` and from each of Flask's
``SECRET_KEY_FALLBACKS``. The first encrypts; every one decrypts (`MultiFernet`). A host rotates by putting
a new key first, or by moving its old ``SECRET_KEY`` to ``SECRET_KEY_FALLBACKS``; the stored secrets move to
the new key when the settings are next saved, or with ``flask lms-stripe secrets rotate``.
"""
from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

from ..errors import ConfigurationError, UnreadableSecret

#: The config keys that list Fernet keys, in the order they are tried.
KEY_SETTINGS = ("LMS_STRIPE_ENCRYPTION_KEYS", "LMS_STRIPE_ENCRYPTION_KEY")
_SEPARATORS = re.compile(r"[\s,]+")


def keys(config) -> tuple[bytes, ...]:
    """Every encryption key, the one that encrypts first. `ConfigurationError` names a malformed key."""
    explicit = tuple(tuple(_listed(config.get(name))) for name in KEY_SETTINGS)
    secrets = (config.get("SECRET_KEY"), *(config.get("SECRET_KEY_FALLBACKS") or ()))
    return _keys(explicit, tuple(_as_bytes(secret) for secret in secrets if secret))


def check_keys(config) -> None:
    """Raise `ConfigurationError` if a configured Fernet key is malformed (at ``init_app``, so that a typo
    fails at start-up rather than on the first page that needs a secret)."""
    for name, listed in zip(KEY_SETTINGS, (_listed(config.get(name)) for name in KEY_SETTINGS)):
        for position, key in enumerate(listed, 1):
            _checked(key, name, position)


@lru_cache(maxsize=8)
def _keys(explicit: tuple[tuple[bytes, ...], ...], secrets: tuple[bytes, ...]) -> tuple[bytes, ...]:
    found = [_checked(key, name, position)
             for name, listed in zip(KEY_SETTINGS, explicit) for position, key in enumerate(listed, 1)]
    found += [_derive(secret) for secret in secrets]
    if not found:
        raise ConfigurationError(
            "Set SECRET_KEY (or LMS_STRIPE_ENCRYPTION_KEYS) so that Stripe secrets can be encrypted at rest."
        )
    return tuple(dict.fromkeys(found))  # without repeats, in order


def _listed(value) -> list[bytes]:
    """A config value as a list of keys: a list, or one string of keys separated by commas or spaces."""
    if not value:
        return []
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        return [part.encode() for part in _SEPARATORS.split(text) if part]
    return [_as_bytes(item) for item in value]


def _as_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _checked(key: bytes, name: str, position: int) -> bytes:
    try:
        Fernet(key)
    except (ValueError, TypeError) as err:
        raise ConfigurationError(
            f"{name}: key {position} is not a Fernet key (32 bytes, URL-safe base64). Generate one with "
            "`python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"`."
        ) from err
    return key


def _derive(secret: bytes) -> bytes:
    digest = hashlib.sha256(b"lms-stripe-plugin/secrets\0" + secret).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=8)
def _fernet(all_keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in all_keys])


def encrypt(value: str) -> str:
    """``value`` encrypted with the first key."""
    return _fernet(keys(current_app.config)).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    """The secret in ``token``; `UnreadableSecret` if no key decrypts it. The settings are read on many
    pages, so the few stored secrets are decrypted once per key list and kept, as the app's config keeps
    its own."""
    try:
        return _decrypt(keys(current_app.config), token)
    except InvalidToken as err:
        raise UnreadableSecret(
            "A stored Stripe secret cannot be decrypted with any encryption key: SECRET_KEY or "
            "LMS_STRIPE_ENCRYPTION_KEYS changed. Enter the secret again on the payment settings page, or add "
            "the old key to LMS_STRIPE_ENCRYPTION_KEYS (or the old SECRET_KEY to SECRET_KEY_FALLBACKS)."
        ) from err


@lru_cache(maxsize=16)
def _decrypt(all_keys: tuple[bytes, ...], token: str) -> str:
    return _fernet(all_keys).decrypt(token.encode()).decode()


def rotate(token: str) -> str | None:
    """``token`` encrypted again with the first key, or None when the first key already encrypts it;
    `UnreadableSecret` if no key decrypts it."""
    all_keys = keys(current_app.config)
    try:
        Fernet(all_keys[0]).decrypt(token.encode())
        return None
    except InvalidToken:
        pass
    try:
        return _fernet(all_keys).rotate(token.encode()).decode()
    except InvalidToken as err:
        raise UnreadableSecret("A stored Stripe secret cannot be decrypted with any encryption key.") from err


def forget_decrypted() -> None:
    """Drop the kept plaintexts (after the secrets change, so that replaced ones leave memory)."""
    _decrypt.cache_clear()


def mask(secret: str | None) -> str:
    """``sk_test_…4242``: enough to recognise a key, never enough to use it."""
    if not secret:
        return ""
    prefix = secret[: secret.rfind("_", 0, 9) + 1]  # sk_test_, rk_live_, whsec_
    return f"{prefix}…{secret[-4:]}"
