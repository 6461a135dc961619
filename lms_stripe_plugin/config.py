"""Configuration keys and their defaults. Every key starts with ``LMS_STRIPE_``."""
from __future__ import annotations

from babel.dates import get_timezone

from .errors import ConfigurationError

DEFAULTS: dict[str, object] = {
    # Where the blueprint is mounted.
    "LMS_STRIPE_URL_PREFIX": "/payments",
    # Where people reach the LMS (https://lms.example.org): the base of every address sent to Stripe or put
    # in a message. Without it, SERVER_NAME; never the request's Host header.
    "LMS_STRIPE_PUBLIC_URL": None,
    # Settings that, when set here, take precedence over the admin page (None = use the page).
    "LMS_STRIPE_ENABLED": None,
    "LMS_STRIPE_PUBLISHABLE_KEY": None,
    "LMS_STRIPE_SECRET_KEY": None,
    "LMS_STRIPE_WEBHOOK_SECRETS": None,  # a string, or a list/tuple (rotation)
    "LMS_STRIPE_DEFAULT_CURRENCY": None,
    "LMS_STRIPE_DEFAULT_VAT_RATE": None,
    "LMS_STRIPE_VOUCHERS_ENABLED": None,
    "LMS_STRIPE_WALLETS_ENABLED": None,
    "LMS_STRIPE_KLARNA_ENABLED": None,
    "LMS_STRIPE_KLARNA_MINIMUM": None,  # minor units of the default currency
    "LMS_STRIPE_SEPA_DEBIT_ENABLED": None,
    "LMS_STRIPE_AUTOMATIC_TAX": None,
    "LMS_STRIPE_TERMS_URL": None,
    # Payment requests: the school's name in messages, learners' own part payments, reminders.
    "LMS_STRIPE_SCHOOL_NAME": None,
    "LMS_STRIPE_PARTIAL_PAYMENTS": None,
    "LMS_STRIPE_PARTIAL_MINIMUM": None,  # minor units of the default currency
    "LMS_STRIPE_REMINDER_DAYS": None,  # "-3,1,7": days relative to a request's due date
    "LMS_STRIPE_REMINDER_MAX": None,
    "LMS_STRIPE_BALANCE_GRACE_DAYS": None,
    "LMS_STRIPE_REMINDER_SMS": None,
    # The seller's legal identity printed on invoices (French law: legal name, address, SIREN or SIRET, VAT
    # number, legal form), the late-payment penalties they state, and whether buyers are businesses.
    "LMS_STRIPE_SELLER_LEGAL_NAME": None,
    "LMS_STRIPE_SELLER_ADDRESS": None,
    "LMS_STRIPE_SELLER_SIRET": None,
    "LMS_STRIPE_SELLER_VAT_NUMBER": None,
    "LMS_STRIPE_SELLER_LEGAL_FORM": None,
    "LMS_STRIPE_LATE_PAYMENT_TEXT": None,
    "LMS_STRIPE_BUSINESS_BUYERS": None,
    # Where "Sign in to buy" leads when the host adapter has no sign_in_url method; "?next=<the page>" is
    # added. None: the words without a link.
    "LMS_STRIPE_SIGN_IN_URL": None,
    # Platform mode: LMS_STRIPE_PUBLISHABLE_KEY, LMS_STRIPE_SECRET_KEY and LMS_STRIPE_WEBHOOK_SECRETS are the LMS
    # operator's platform account's (the webhook one of its Connect endpoint), and the school connects its own
    # Stripe account from the LMS ("Online payment"), where every payment is made. False: the school's own keys.
    "LMS_STRIPE_PLATFORM": False,
    # True: the school sells no course in the catalog, and uses invoices, payment requests and links only (the
    # settings page's choice, which this overrides); None: the page's.
    "LMS_STRIPE_REQUESTS_ONLY": None,
    # Platform mode: the platform's share of each payment a school takes through the plugin, in basis points of
    # the amount (250: 2.5 %), or a function of the school's id (``Host.current_school``) that returns them;
    # None or 0: none. Taken as Stripe's application fee on the school's direct charges.
    "LMS_STRIPE_APPLICATION_FEE": None,
    # Stripe API base address: None for Stripe itself, or the sandbox's URL.
    "LMS_STRIPE_API_BASE": None,
    "LMS_STRIPE_TIMEOUT": 20,
    "LMS_STRIPE_MAX_NETWORK_RETRIES": 2,
    "LMS_STRIPE_WEBHOOK_TOLERANCE": 300,
    # Level of the Stripe SDK's logger ("stripe"), whose INFO and DEBUG lines carry request bodies and so
    # learners' e-mail addresses. None: WARNING, unless the host set a level on that logger itself.
    "LMS_STRIPE_SDK_LOG_LEVEL": None,
    # Fernet keys for the secrets at rest, newest first (a list, or one string separated by commas), then
    # one more key; after them, keys derived from SECRET_KEY and SECRET_KEY_FALLBACKS. The first of all
    # encrypts, every one decrypts (core.crypto).
    "LMS_STRIPE_ENCRYPTION_KEYS": None,
    "LMS_STRIPE_ENCRYPTION_KEY": None,
    # Fee table for the "what the school receives" estimate: (percent as a string, fixed minor units, currency).
    "LMS_STRIPE_FEES": {
        "card": {"percent": "1.5", "fixed": 25, "currency": "EUR"},
        "klarna": {"percent": "4.9", "fixed": 40, "currency": "EUR"},
    },
    # Template the plugin's pages extend; a host sets its own layout (it must define block "content").
    "LMS_STRIPE_BASE_TEMPLATE": "lms_stripe/base.html",
    # Country used for the Stripe tax rates the plugin creates.
    "LMS_STRIPE_TAX_COUNTRY": "FR",
    # Checkout sessions expire after this many seconds (Stripe accepts 30 minutes to 24 hours).
    "LMS_STRIPE_CHECKOUT_EXPIRY": 3600,
    # Revoke access when a dispute is opened.
    "LMS_STRIPE_REVOKE_ON_DISPUTE": True,
    # Page size of the admin lists.
    "LMS_STRIPE_PAGE_SIZE": 50,
    # The school's time zone (an IANA name): times in the pages, the audit log and the exports.
    "LMS_STRIPE_TIMEZONE": "UTC",
    # Messages to learners (payment requests, reminders). E-mail: "auto" is the host's Flask-Mail if the app
    # has one, else SMTP if a server is set, else "console"; "file" appends to an mbox file.
    "LMS_STRIPE_MAIL_BACKEND": "auto",  # auto | flask_mail | smtp | console | file
    "LMS_STRIPE_MAIL_SENDER": None,  # "School <noreply@school.org>"; default: the host's MAIL_DEFAULT_SENDER
    "LMS_STRIPE_MAIL_SERVER": None,
    "LMS_STRIPE_MAIL_PORT": None,  # default: 465 with SSL, 587 with TLS, else 25
    "LMS_STRIPE_MAIL_USE_TLS": False,  # STARTTLS
    "LMS_STRIPE_MAIL_USE_SSL": False,
    "LMS_STRIPE_MAIL_USERNAME": None,
    "LMS_STRIPE_MAIL_PASSWORD": None,  # never logged nor stored with a message's error
    "LMS_STRIPE_MAIL_FILE": None,  # the "file" backend's mbox; default: instance/lms_stripe_mail.mbox
    # SMS: "auto" is Twilio when its account SID is set, else "console"; "file" appends JSON lines.
    "LMS_STRIPE_SMS_BACKEND": "auto",  # auto | twilio | console | file
    "LMS_STRIPE_SMS_DEFAULT_REGION": None,  # where national numbers are read ("FR"); default: LMS_STRIPE_TAX_COUNTRY
    "LMS_STRIPE_SMS_FILE": None,  # the "file" backend's file; default: instance/lms_stripe_sms.jsonl
    "LMS_STRIPE_TWILIO_ACCOUNT_SID": None,
    "LMS_STRIPE_TWILIO_AUTH_TOKEN": None,
    "LMS_STRIPE_TWILIO_FROM": None,  # a Twilio number (+33…) or a Messaging Service SID (MG…)
    # Seconds a mail server or the SMS provider has to answer (Flask-Mail keeps its own settings).
    "LMS_STRIPE_MESSAGE_TIMEOUT": 30,
    # A job queue for webhook handling, messages, follow-up work and the reminders run (docs/deployment.md):
    # the Redis of an RQ queue ("redis://127.0.0.1:6379/0"; the "rq" extra), unless the host passes its own
    # rq.Queue or Celery app as StripePayments(queue=...). Neither: everything runs in-process.
    "LMS_STRIPE_RQ_REDIS_URL": None,
    "LMS_STRIPE_RQ_QUEUE": "lms_stripe",  # the RQ queue's name
    "LMS_STRIPE_RQ_JOB_TIMEOUT": 1800,  # seconds an RQ job may run (a reminders run over many requests)
    # Seconds before each new attempt of a webhook event whose handling failed in a worker; then it waits,
    # failed, for a replay (the administrators' page, `flask lms-stripe events replay`).
    "LMS_STRIPE_QUEUE_RETRY_DELAYS": (10, 60, 300),
}

#: Settings an administrator edits on the page, and the config key that overrides each.
OVERRIDES: dict[str, str] = {
    "enabled": "LMS_STRIPE_ENABLED",
    "requests_only": "LMS_STRIPE_REQUESTS_ONLY",
    "publishable_key": "LMS_STRIPE_PUBLISHABLE_KEY",
    "secret_key": "LMS_STRIPE_SECRET_KEY",
    "webhook_secrets": "LMS_STRIPE_WEBHOOK_SECRETS",
    "default_currency": "LMS_STRIPE_DEFAULT_CURRENCY",
    "default_vat_rate": "LMS_STRIPE_DEFAULT_VAT_RATE",
    "vouchers_enabled": "LMS_STRIPE_VOUCHERS_ENABLED",
    "wallets_enabled": "LMS_STRIPE_WALLETS_ENABLED",
    "klarna_enabled": "LMS_STRIPE_KLARNA_ENABLED",
    "klarna_minimum": "LMS_STRIPE_KLARNA_MINIMUM",
    "sepa_debit_enabled": "LMS_STRIPE_SEPA_DEBIT_ENABLED",
    "automatic_tax": "LMS_STRIPE_AUTOMATIC_TAX",
    "terms_url": "LMS_STRIPE_TERMS_URL",
    "school_name": "LMS_STRIPE_SCHOOL_NAME",
    "partial_payments_enabled": "LMS_STRIPE_PARTIAL_PAYMENTS",
    "partial_minimum": "LMS_STRIPE_PARTIAL_MINIMUM",
    "reminder_days": "LMS_STRIPE_REMINDER_DAYS",
    "reminder_max": "LMS_STRIPE_REMINDER_MAX",
    "reminder_sms": "LMS_STRIPE_REMINDER_SMS",
    "seller_legal_name": "LMS_STRIPE_SELLER_LEGAL_NAME",
    "seller_address": "LMS_STRIPE_SELLER_ADDRESS",
    "seller_siret": "LMS_STRIPE_SELLER_SIRET",
    "seller_vat_number": "LMS_STRIPE_SELLER_VAT_NUMBER",
    "seller_legal_form": "LMS_STRIPE_SELLER_LEGAL_FORM",
    "late_payment_text": "LMS_STRIPE_LATE_PAYMENT_TEXT",
    "business_buyers": "LMS_STRIPE_BUSINESS_BUYERS",
    "balance_grace_days": "LMS_STRIPE_BALANCE_GRACE_DAYS",
}


def apply_defaults(config) -> None:
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)
    check_time_zone(config["LMS_STRIPE_TIMEZONE"])


def check_time_zone(name) -> None:
    """A time zone that is no IANA name fails when the app starts, not on a page."""
    try:
        if not isinstance(name, str):
            raise TypeError(name)
        get_timezone(name)
    except (LookupError, ValueError, TypeError):
        raise ConfigurationError(f"LMS_STRIPE_TIMEZONE: {name!r} is not a time zone (an IANA name such as "
                                 "'Europe/Paris').") from None
