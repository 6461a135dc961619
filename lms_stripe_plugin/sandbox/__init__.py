"""Offline stand-in for Stripe's test mode.

A separate Flask app that the official ``stripe`` SDK reaches through its base address,
exactly as it reaches Stripe. Production code never imports it, and it imports nothing
from the rest of the plugin::

    from lms_stripe_plugin.sandbox import SandboxServer
    with SandboxServer(deliver_async=False, webhook_sink=sink) as server:
        client = stripe.StripeClient("sk_test_sandbox", base_addresses={"api": server.url})
        session = client.v1.checkout.sessions.create(params={...})

Run it standalone with ``python -m lms_stripe_plugin.sandbox --port 12111 --webhook-url URL
--webhook-secret whsec_...``.

Public API
----------
``create_app(*, webhook_url=None, webhook_secret="whsec_sandbox", webhook_sink=None,
public_url=None, delayed_settle_seconds=None, deliver_async=True, webhook_retry_backoff=0.5,
webhook_max_attempts=5, refund_failure_seconds=1.0, webhook_shuffle=False, webhook_concurrency=1,
webhook_shuffle_seed=None, terms_of_service_url=None, business_name=None, business_address=(),
connect_webhook_url=None, connect_webhook_secret="whsec_sandbox_connect", connect_webhook_sink=None,
account_verification="verified")`` returns the
Flask app (``webhook_shuffle`` delivers the events of
each request in random order, ``webhook_concurrency`` delivers that many at once); its
:class:`SandboxState` is ``app.extensions["stripe_sandbox"]`` (``wait_for_deliveries(timeout)``,
``deliveries`` (each with its ``endpoint``: ``account`` or ``connect``), ``all(object_type)``, ``get(id)``,
``owner_of(id)``, ``advance_clock(seconds)``, ``reset()``).
``SandboxServer(port=0, host="127.0.0.1", **create_app_kwargs)`` serves it from a thread
(``start()``, ``url``, ``app``, ``state``, ``stop()``, context manager).
``sign_payload(payload, secret, timestamp=None)`` makes a ``Stripe-Signature`` value.

Stripe API (``/v1``, form-encoded, ``Authorization: Bearer sk_test_...``)
--------------------------------------------------------------------------
customers (create, update, retrieve, list); tax_rates, coupons, promotion_codes (create, retrieve,
list); payment_method_configurations (create, update, retrieve, list); checkout/sessions (create, retrieve, list, ``/expire``, ``/line_items``); invoices (create,
retrieve, list, ``/lines``, ``/add_lines``, ``/finalize``, ``/send``, ``/void``,
``/mark_uncollectible``, ``/attach_payment``); invoiceitems (create, retrieve, list);
invoice_payments, payment_intents, charges, disputes, events (retrieve, list); refunds and
credit_notes (create, retrieve, list, ``/void``); disputes (update with ``evidence``/``submit``, ``/close``);
payment_records (``/report_payment``, retrieve).
``Idempotency-Key`` (per account: the ``Stripe-Account`` header's, else the platform's) keeps the first answer of a request whose
endpoint began to run, whatever its status (2xx, 4xx, 5xx), and replays it
(``Idempotent-Replayed: true``; a kept 5xx carries ``Stripe-Should-Retry: false``). Requests
refused before the endpoint ran (authentication, parameter validation, a key in use: 409) keep
nothing. Keys expire after 24 hours of sandbox time; the same key with another endpoint or other
parameters is a 400 ``idempotency_error``.

Every request is checked against the installed SDK's typed params for that endpoint
(``stripe.params...*Params``, walked at import time; see ``schema.py``) before the endpoint
runs, with Stripe's answers: ``parameter_unknown`` for a name the pinned API does not have
(``payment_method_types`` on Checkout: the 2026 API has ``allowed_payment_method_types``),
``parameter_missing``, ``parameter_invalid_empty`` (``""`` where the API cannot unset),
``parameter_invalid_integer``, and ``Invalid boolean: ...`` / ``Invalid <param>: must be one of
...`` (no code) for booleans and enums. A real parameter the sandbox does not model is a 400
``parameter_unsupported``. Checkout offers card, klarna and sepa_debit: the list in
``allowed_payment_method_types``, else what a Payment Method Configuration turns on (dynamic payment
methods: ineligible ones left out silently, ``excluded_payment_method_types`` taken off), the one in
``payment_method_configuration`` (it must exist and be active; not with
``allowed_payment_method_types``, nor with ``managed_payments[enabled]=true``) or the account's default
``pmc_sbxDefault`` (cards only, as the sandbox's Dashboard has it; it can be updated).
Apple Pay and Google Pay ride on cards: the page shows their buttons when the session's configuration
(the default one with ``allowed_payment_method_types``) turns them on, Google Pay not with automatic tax
and no shipping address collected. Configurations model card, apple_pay, google_pay, klarna, sepa_debit
and link (see ``payment_method_configurations.py``). Seeded promotion codes: ``WELCOME10`` (10 % off)
and ``HALF`` (50 % off).

Only event types of the pinned API are emitted (the SDK's ``enabled_events`` list). Events of a
card payment, in order of creation: ``customer.created`` (when Checkout creates the customer),
``payment_intent.created``, ``payment_intent.succeeded``, ``charge.succeeded``, then with
``invoice_creation`` ``invoice.created``, ``invoice.finalized``, ``invoice_payment.paid``,
``invoice.paid``, ``invoice.payment_succeeded``; then ``checkout.session.completed`` and
``charge.updated`` (the balance transaction). A SEPA debit fires ``payment_intent.created``,
``payment_intent.processing``, ``charge.pending`` and ``checkout.session.completed`` at once, then
``checkout.session.async_payment_succeeded`` or ``..._failed`` when settled. Disputes:
``charge.dispute.created`` and ``.funds_withdrawn``; ``charge.dispute.updated`` on each update;
``charge.dispute.closed`` (and ``.funds_reinstated`` when won). Currency rules (docs.stripe.com/currencies): a Checkout total above 0 and
below Stripe's minimum charge (EUR 0.50, GBP 0.30, JPY 50, ...) is a 400 ``amount_too_small``;
in three-decimal currencies (BHD, JOD, KWD, OMR, TND) unit amounts, refunds and credit note
amounts must end in 0 (400 ``invalid_charge_amount``) and discounts round to tens; amounts are
shown with their currency's decimals (``12.340 KWD``, ``¥5,000``). Account rules: ``consent_collection[terms_of_service]=required`` is refused unless the account
has terms of service (``create_app(terms_of_service_url=...)`` or ``POST /_sandbox/account``).
``automatic_tax[enabled]=true`` taxes with the EU VAT standard rate of the customer's country
(no tax outside the EU table; ``taxes.py``); a Customer without address is a 400
``customer_tax_location_invalid`` unless ``customer_update[address]=auto``, and then (or for a
guest) the page asks for the country (``requires_location_inputs``). Klarna is refused below its
minimum (EUR 1.00 or equivalent) and when the currency is not that of the customer's country. ``session.url`` is null once the session is
complete or expired, as on Stripe.

Connect: connected accounts, ``Stripe-Account``, Connect webhooks
-----------------------------------------------------------------
``POST /v1/accounts`` (the platform only: another account's header is refused, "Only Stripe Connect platforms
can work with other accounts") creates a connected account configured by its controller properties, as Stripe
recommends instead of ``type`` (not modelled): the sandbox models businesses with their own full Stripe
Dashboard (``controller[stripe_dashboard][type]=full``, ``[fees][payer]=account``, ``[losses][payments]=stripe``,
``[requirement_collection]=stripe``, the defaults); other controller values are ``parameter_unsupported``. It
takes ``country`` (AT, BE, CH, DE, ES, FI, FR, GB, IE, IT, LU, NL, PT, US; default DE), ``default_currency``
(that country's), ``email``, ``business_type``, ``company[name]``, ``business_profile`` (``mcc``, ``name``,
``product_description``, ``support_*``, ``url``), ``capabilities`` (``card_payments``, ``transfers``) and
``metadata``; each account gets its own default payment method configuration. ``GET /v1/accounts``,
``GET /v1/accounts/{id}`` (the platform, or the account itself; otherwise 403 ``account_invalid``) and
``POST /v1/accounts/{id}`` (profile, email, metadata; ``business_type`` and ``company`` until an Account Link
exists). The account object has ``details_submitted``, ``charges_enabled``, ``payouts_enabled``,
``requirements`` (``currently_due``, ``eventually_due``, ``past_due``, ``pending_verification``,
``current_deadline``, ``disabled_reason``, ``errors``, ``alternatives``), ``capabilities``,
``business_profile``, ``company``, ``controller``, ``external_accounts``, ``settings`` and ``tos_acceptance``;
how requirements move is in ``connect.py``. Every change fires ``account.updated`` with
``previous_attributes``; the payout bank account fires ``account.external_account.created``.

``POST /v1/account_links`` (``account``, ``type=account_onboarding``, ``refresh_url`` and ``return_url``
required (``url_invalid`` unless http(s)); ``account_update`` is refused for full-Dashboard accounts; ``collect``
or ``collection_options``) answers ``{"object": "account_link", "created", "expires_at" (+300 s), "url"}``.
The ``url`` is single use: opened once it leads to the hosted onboarding; opened again or after ``expires_at``
it redirects to ``refresh_url``. The onboarding pages (``onboarding.py``: ids, steps, errors) ask the company
name, its activity (an MCC), its products or services and the payout IBAN, then the services agreement; the
details are then verified, and the browser goes to ``return_url``.

A request with ``Stripe-Account: acct_...`` (one of the platform's accounts; else 403 ``account_invalid``)
acts as that account: what it creates belongs to it, and it sees only its own objects (and its Account); the
platform's objects and other accounts' answer 404 ``resource_missing`` (400 when sent as a parameter), and the
platform does not see the account's objects either. Hosted pages and control endpoints act as the owner of
the object they are about (a connected account's Checkout Session is paid on that account, its invoice shows
its business name and country). A direct charge needs ``charges_enabled``: Checkout Sessions are refused on an
account without it, and paying one after Stripe disabled the account's charges is refused. Consent to terms
needs the connected account's own terms URL (``/_sandbox/account`` with ``account``). Invoice numbers are
counted per account. ``payment_intent_data[application_fee_amount]`` (at most the total) is for direct charges
only (Stripe's refusal otherwise): the PaymentIntent and charge carry it and the platform's ``application``;
when the charge succeeds the platform gets an ``application_fee`` (``GET /v1/application_fees``, its own, not
the account's) and ``application_fee.created`` on its own endpoint.

Events of a connected account's objects carry ``"account": "acct_..."`` and are delivered to the Connect
endpoint (``connect_webhook_url``/``connect_webhook_sink``, signed with ``connect_webhook_secret``); the
platform's own events have no ``account`` and go to the account endpoint. ``GET /v1/events`` lists the events
of the account the request acts as.

Customers and invoices (payment requests)
-----------------------------------------
Customers take ``email`` (512 characters), ``name`` (256), ``phone`` (20), ``address`` (``country``
two letters: Stripe's "Country '...' is unknown"), ``preferred_locales`` (language tags such as
``fr-FR``), ``balance``, ``invoice_prefix`` and ``invoice_settings`` (``custom_fields``, ``footer``,
``rendering_options[amount_tax_display]``, the defaults of their invoices). ``POST
/v1/customers/{id}`` changes what is sent and fires ``customer.updated`` with the previous values;
metadata keys sent empty are removed, ``address=""`` unsets the address.

``POST /v1/invoices`` makes a draft (``invoice.created``) with ``collection_method=send_invoice``
only (the sandbox keeps no payment method to charge) and ``days_until_due`` (due that many days
after creation) or a future ``due_date``; ``currency`` defaults to the customer's, else ``eur``
(the account is German); ``description`` (1500), ``footer``, ``custom_fields`` (4 at most, name 40,
value 140), ``metadata``, ``auto_advance`` (default false), ``default_tax_rates``,
``effective_at``, ``rendering`` (``amount_tax_display``, ``pdf[page_size]``) and
``pending_invoice_items_behavior`` (``include`` takes the customer's pending invoice items).
Lines come from ``/add_lines`` (``lines[]`` with ``amount`` + ``description``, ``price_data``
with ``product`` or ``product_data``, ``pricing[price]`` or a pending ``invoice_item``;
``quantity``, ``tax_rates`` (``""``: none, absent: the invoice's defaults), ``metadata``,
``period``; ``invoice_metadata``) or ``POST /v1/invoiceitems`` (``customer``, ``invoice`` or
pending, ``amount`` + ``currency``, ``price_data`` with an existing ``product``, ``pricing``,
``unit_amount_decimal``, ``quantity``, ``tax_rates``, ``tax_behavior``). Each line is an invoice
item (``invoiceitem.created``, then ``invoice.updated``); only drafts take lines
(``invoice_not_editable``), 250 at most. Taxes are computed line by line: an inclusive tax rate's
tax is ``amount - round_half_up(amount / (1 + rate))`` (300.00 TTC at 20 %: 250.00 + 50.00), exclusive
rates add to the total; ``subtotal``, ``subtotal_excluding_tax``, ``total``,
``total_excluding_tax``, ``total_taxes`` and each line's ``taxes`` follow. Negative amounts
(credits), discounts and automatic tax on invoices are not modelled (``parameter_unsupported``).

``/finalize`` numbers the invoice from the account's sequence (``SBX-0001``, shared with
Checkout's invoices), sets ``hosted_invoice_url``, ``invoice_pdf``, ``status_transitions.finalized_at``
and status ``open``, applies the customer's balance (``starting_balance``, ``ending_balance``,
``amount_due``; ``customer.updated``) and opens the default payment: a PaymentIntent for
``amount_remaining`` (``payment_intent.created``, ``confirmation_secret``; cards, and SEPA Direct Debit on an
invoice in euros) and an
``invoice_payment`` with ``is_default`` kept at ``amount_remaining`` and canceled (its
PaymentIntent too) once nothing remains or the invoice is void. An invoice with 0 to pay is
``paid`` at once. ``/send`` fires ``invoice.sent`` and e-mails nobody, as test mode does (a draft is
finalized first; the customer needs an email). ``/void`` and ``/mark_uncollectible`` fire
``invoice.voided`` / ``invoice.marked_uncollectible``; void is refused while a payment other than
the default one is ``open`` or ``paid``, mark_uncollectible while one is ``open``; a voided invoice gives
back the customer's balance it applied (an ``unapplied_from_invoice`` balance transaction).
An open invoice still open at its due date fires ``invoice.overdue`` once, 0 days after it is due
(the account's automations), on the sandbox clock (``advance_clock``); ``invoice.will_be_due``
is not sent.

``/attach_payment`` with ``payment_intent`` attaches a
PaymentIntent of the invoice's customer and currency, for at most ``amount_remaining`` (more:
``amount_too_large``), not canceled, not already attached to an invoice (attachments are
permanent: there is no detach in this API version; one payment is never applied across several
invoices, docs.stripe.com/invoicing/payment-application) and not from a Checkout Session with
``invoice_creation``; an open or uncollectible invoice only. With ``payment_record`` it attaches a
Payment Record (``POST /v1/payment_records/report_payment``: ``amount_requested``, ``initiated_at``,
``payment_method_details``, ``outcome`` ``guaranteed``/``failed``/``canceled`` with the moment in the hash
of that name, ``customer_details[customer]``, ``processor_details[type]=custom`` with
``custom[payment_reference]``; ``reported_by`` ``self``; no event) by the same rules: the record's
customer and currency, all of it up to ``amount_remaining``, one invoice only, not failed or canceled; a
guaranteed record is credited at once (its ``invoice_payment`` has ``payment[type]=payment_record``), and
a credit note's ``refund_amount`` never refunds it (Stripe refunds only what it charged). A succeeded PaymentIntent is credited
at once: its ``invoice_payment`` is ``paid`` (``invoice_payment.paid``), ``amount_paid`` goes up
and ``amount_remaining`` down (``invoice.updated`` with ``previous_attributes``); at 0 the invoice is
``paid`` (``status_transitions.paid_at``, ``invoice.paid``, ``invoice.payment_succeeded``). A
PaymentIntent not yet succeeded (a SEPA debit processing, a declined card the learner may try
again) stays ``open`` and is credited when it succeeds; it is ``canceled`` when its debit fails at
settlement or its Checkout Session expires (no v1 event says so). ``GET /v1/invoice_payments``
filters on ``invoice``, ``status`` and ``payment[type]`` with ``payment[payment_intent]``; the
invoice's ``payments`` appear only with ``expand[]=payments``. A Checkout Session to collect part
of an invoice has ``customer``, one ``price_data`` line in the invoice's currency and no
``invoice_creation``; its PaymentIntent carries ``payment_intent_data[metadata]``.

Credit notes take open and paid invoices: the credit first lowers ``amount_remaining`` and
``amount_due`` (``pre_payment_amount``; an open invoice credited down to 0 becomes ``paid`` with
``invoice.paid``), the rest (``post_payment_amount``) is refunded (``refund_amount``: the most
recently paid payments first; or ``refunds[]`` linking refunds of the invoice's payments),
credited to the customer's balance (``credit_amount``, the default; the credit note names its
``customer_balance_transaction``, of type ``credit_note``) or out of band; type
``pre_payment``, ``post_payment`` or ``mixed``. What the customer's credit balance paid at
finalization counts as paid: it can be credited back to the balance, never refunded. Refunds made
through ``/v1/refunds`` and on no credit note are taken off what can still be credited.

Hosted checkout page: ``GET/POST /c/pay/{session_id}``
-------------------------------------------------------
In the session's ``locale`` (``auto`` or none: the browser's ``Accept-Language``): French labels for
``fr`` and ``fr-CA``, English for the others, amounts written the locale's way (``119,00 €``) with the
currency's decimals; ``<html lang>`` says which language the labels are in (``locales.py``).
Stable element ids (form field names in brackets):

- ``#checkout-form`` -- the form; ``#pay`` -- the Pay button (``action=pay``)
- ``#email`` (``email``) -- read-only when the session already knows the email
- ``#wallets`` holds ``#wallet-apple_pay`` and ``#wallet-google_pay`` (``wallet=apple_pay|google_pay``,
  a submit button each: the wallet pays with its card, 4242 4242 4242 4242) -- only the session's wallets
- ``input[name=method][value=card|klarna|sepa_debit]`` -- ids ``#method-card``,
  ``#method-klarna``, ``#method-sepa_debit``; only the session's methods are shown
- ``#card-number`` (``card_number``), ``#card-expiry`` (``card_expiry``, ``MM / YY``),
  ``#card-cvc`` (``card_cvc``) -- inside ``#card-fields``
- ``#iban`` (``iban``) -- inside ``#sepa-fields``; ``#klarna-fields`` holds Klarna's note
- ``#billing-name`` (``billing_name``); ``#billing-country`` (``billing_country``, two letters) when
  automatic tax needs the customer's location or Klarna is offered
- ``#promo-code`` (``promotion_code``), ``#apply-promo`` (``action=apply_promo``),
  ``#remove-promo`` (``action=remove_promo``), ``#promo-error``, ``#promo-applied``
  -- only when ``allow_promotion_codes``
- ``#terms`` (``terms=accepted``) with ``#terms-text`` -- only when
  ``consent_collection[terms_of_service]=required``
- ``#payment-error`` -- decline and validation messages; ``#back`` -- link to ``cancel_url``
- ``#total-amount``, ``#subtotal-amount``, ``#discount-amount``, ``#tax-amount``, ``.line-item``
- closed sessions show ``#message`` ("This checkout session has expired." and similar)

Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 "Your card was declined.";
4000 0000 0000 9995 "Your card has insufficient funds."; 4000 0000 0000 0259 pays then is
disputed; refunds on 4000 0000 0000 7726 start ``pending`` (``pending_reason: processing``) and
succeed later, refunds on 4000 0000 0000 5126 start ``succeeded`` and fail later
(``refund.updated``, ``refund.failed``, ``charge.refund.updated``) after
``refund_failure_seconds`` of sandbox time. A refund of a SEPA debit that has not settled is
``pending`` (``pending_reason: charge_pending``) until the debit settles (then ``succeeded``) or
fails (then ``canceled``). SEPA: DE89370400440532013000
settles, DE62370400440532013001 fails at settlement. Klarna pays at once.

Invoices and their documents
----------------------------
Checkout's ``invoice_creation[invoice_data]`` takes ``custom_fields`` (at most 4, a name of up to 40
characters and a value of up to 140, as on invoices), ``footer`` (5000), ``description``, ``metadata``,
``account_tax_ids`` and ``rendering_options[amount_tax_display]`` (``exclude_tax`` or
``include_inclusive_tax``), which becomes the invoice's ``rendering``; invoices take ``rendering``, never
``rendering_options`` (``parameter_unknown``, as the pinned API). Documents are written in the language of
the invoice's customer, its first ``preferred_locales`` (French labels for ``fr`` and ``fr-*``, dates
``04/05/2026`` and amounts ``119,00 €``; English otherwise): the account's public business details
(``business_name``, ``business_address``; ``account_name``) at the top, the number and dates, the buyer
(name, e-mail, address), the description and custom fields, the lines (without their tax when
``rendering.amount_tax_display`` is ``exclude_tax``: "Montant HT"), the net, each tax rate's display name
and percentage, the total, what was paid and remains, the payments and the footer. Stripe's own French
wording of these labels is not published; the sandbox's is its own.

Other pages: ``/i/{invoice}``, the hosted invoice page (``#seller-name``, ``#invoice-number``,
``#invoice-status``, ``#invoice-total``, ``#due-date``, ``#custom-fields``, ``.invoice-line``, ``.tax-row``
(one per tax rate, "TVA 20 % (incluse)"), ``#net-amount``, ``#amount-paid``, ``#amount-remaining``,
``#credited-amount``, ``.invoice-payment`` with ``data-status`` (the payments other than the default one),
``#invoice-footer``, ``#credit-notes``, ``#download-pdf``); while the invoice is open, ``#invoice-pay-form``
pays what remains through its default payment (``invoice_paying.py``): ``#method-card`` and, for an invoice in
euros, ``#method-sepa_debit`` (the sandbox's invoice template), the card fields and ``#iban`` of the checkout
page, ``#billing-name``, ``#payment-error``, ``#pay``; a card pays at once (``payment_intent.succeeded``,
``charge.succeeded`` whose metadata is the PaymentIntent's, empty, and which names no invoice, then
``invoice_payment.paid`` with ``is_default``, ``invoice.updated``, ``invoice.paid``,
``invoice.payment_succeeded``, ``charge.updated``); a SEPA debit fires ``payment_intent.processing`` and
``charge.pending`` and the page says ``#payment-processing`` until it settles;
``/files/invoices/{id}.pdf`` (the same, in the currency's decimals); ``/files/credit_notes/{id}.pdf`` (in
the language of its invoice's customer); ``/receipts/{charge}``.

Control endpoints (``/_sandbox``, JSON, no auth)
-------------------------------------------------
``POST /reset``; ``GET /state``; ``GET|POST /account`` ``{"terms_of_service_url", "business_name",
"business_address": [lines]}``;
``POST /checkout/sessions/{id}/pay`` ``{"card", "method", "promotion_code", "email", "name",
"iban", "expiry", "cvc", "terms_accepted", "country", "wallet"}`` (402 on decline; ``wallet`` pays
through that wallet button, with ``card`` if given); ``POST /checkout/sessions/{id}/settle`` ``{"outcome": "succeeded"|"failed"}``;
``POST /invoices/{id}/pay`` (as the hosted invoice page: ``{"card", "method", "iban", "name", "expiry",
"cvc"}``, 402 on decline); ``POST /invoices/{id}/settle`` ``{"outcome"}`` (its SEPA debit);
``POST /charges/{id}/refund`` ``{"amount"}``; ``POST /charges/{id}/dispute``;
``POST /disputes/{id}/close`` ``{"outcome": "won"|"lost"}``; ``POST /refunds/{id}/fail``
``{"reason"}``; ``POST /clock/advance`` ``{"seconds"}``; ``POST /events/{id}/resend``;
``GET /deliveries`` (with each attempt's ``endpoint``);
``POST /accounts/{id}/onboarding`` ``{"company_name", "activity", "description", "iban"}`` (fills in and
submits the hosted onboarding, defaults for everything); ``POST /accounts/{id}/verification`` ``{"outcome":
"verified"|"documents_required"|"pending"}`` (at once for an account whose submitted details are verified or
being verified, else at its next verification); ``POST /accounts/{id}/disable`` ``{"reason": ...}`` (a
``requirements.disabled_reason`` of the pinned API, default ``under_review``); ``GET|POST /account`` with
``"account": "acct_..."`` reads or sets a connected account's ``terms_of_service_url`` and
``business_address``; ``POST|GET|DELETE /faults`` with ``{"method", "path", "kind":
"500"|"429"|"timeout"|"connection"|"card_error", "times", "timeout_seconds", "after"}``
(``after`` with ``timeout`` or ``500``: the request is carried out, then its answer is held back
or replaced by a 500 that its idempotency key keeps).
"""

from .app import create_app
from .payments import PaymentAttempt
from .server import SandboxServer
from .state import API_VERSION, SandboxState
from .webhooks import DeliveryAttempt, sign_payload

__all__ = [
    "API_VERSION",
    "DeliveryAttempt",
    "PaymentAttempt",
    "SandboxServer",
    "SandboxState",
    "create_app",
    "sign_payload",
]
