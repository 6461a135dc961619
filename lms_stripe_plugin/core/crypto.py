"""Encryption of secrets at rest (Stripe keys, webhook secrets) with Fernet."""
from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from ..errors import ConfigurationError


def _key() -> bytes | str:
    key = current_app.config.get("LMS_STRIPE_ENCRYPTION_KEY")
    if key:
        return key
    secret = current_app.config.get("SECRET_KEY")
    if not secret:
        raise ConfigurationError(
            "Set SECRET_KEY (or LMS_STRIPE_ENCRYPTION_KEY) so that Stripe secrets can be encrypted at rest."
        )
    material = secret.encode() if isinstance(secret, str) else secret
    digest = hashlib.sha256(b"lms-stripe-plugin/secrets\0" + material).digest()
    return base64.urlsafe_b64encode(digest)


def encrypt(value: str) -> str:
    return Fernet(_key()).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    """The secret in ``token``. The settings are read on every page that shows prices, so the few stored
    secrets are decrypted once per key and kept, as the app's config keeps its own."""
    try:
        return _decrypt(_key(), token)
    except InvalidToken as err:
        raise ConfigurationError(
            "A stored Stripe secret cannot be decrypted: SECRET_KEY or LMS_STRIPE_ENCRYPTION_KEY changed. "
            "Enter the keys again on the payment settings page."
        ) from err


@lru_cache(maxsize=16)
def _decrypt(key: bytes | str, token: str) -> str:
    return Fernet(key).decrypt(token.encode()).decode()


def forget_decrypted() -> None:
    """Drop the kept plaintexts (after the secrets change, so that replaced ones leave memory)."""
    _decrypt.cache_clear()


def mask(secret: str | None) -> str:
    """``sk_test_…4242``: enough to recognise a key, never enough to use it."""
    if not secret:
        return ""
    prefix = secret[: secret.rfind("_", 0, 9) + 1]  # sk_test_, rk_live_, whsec_
    return f"{prefix}…{secret[-4:]}"
