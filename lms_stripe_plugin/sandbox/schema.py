"""Request parameters exactly as the installed ``stripe`` SDK types them.

Each endpoint the sandbox serves is paired with the SDK's ``*Params`` TypedDict for it
(``stripe.params.checkout.SessionCreateParams`` for ``POST /v1/checkout/sessions``, ...). Those
TypedDicts are generated from Stripe's OpenAPI description of the pinned API version, so walking
them gives every parameter name, type and enum value the real API accepts. The tree is built at
import time: upgrading the SDK (and so the pinned API version) changes what the sandbox accepts.

Stripe checks a request against this description before the endpoint runs; :func:`validate`
does the same and raises the error Stripe answers (``parameter_unknown``, ``parameter_missing``,
``parameter_invalid_empty``, ``parameter_invalid_integer``, ...).
"""

from __future__ import annotations

import dataclasses
import decimal
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe
import stripe.params
import stripe.params.checkout
from stripe._request_options import RequestOptions
from stripe._stripe_object import UntypedStripeObject
from typing_extensions import NotRequired, Required, is_typeddict

from .errors import StripeError, invalid_param, missing_param, unknown_param

# Keys every *Params TypedDict inherits from RequestOptions: they travel as headers, not in the body.
REQUEST_OPTIONS = frozenset(RequestOptions.__annotations__)
# Names the SDK's RequestOptions annotations refer to without importing them at run time.
_HINT_NAMES = {"StripeContext": stripe.StripeContext, "Mapping": typing.Mapping}
_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Node:
    """One parameter's type; ``unsettable`` when the SDK allows ``""`` (Stripe's "unset this")."""

    unsettable: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class Scalar(Node):
    """A string, integer, boolean or decimal; ``enum`` lists a string's allowed values."""

    kind: str
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Array(Node):
    """A list, sent as ``name[0]=...&name[1]=...``."""

    item: Node


@dataclass(frozen=True)
class Hash(Node):
    """A hash with keys the caller chooses (``metadata``, ``currency_options``)."""

    value: Node


@dataclass(frozen=True)
class Obj(Node):
    """A TypedDict: known keys only, some of them required."""

    fields: Mapping[str, Node]
    required: frozenset[str]


@dataclass(frozen=True)
class Choice(Node):
    """A union of shapes, e.g. ``created`` as an integer or as ``{gt, gte, lt, lte}``."""

    options: tuple[Node, ...]


_SCALARS = {str: "string", int: "integer", bool: "boolean", float: "decimal", decimal.Decimal: "decimal"}


def schema_of(params_class: type) -> Obj:
    """The parameter tree of one SDK ``*Params`` TypedDict, request options left out."""
    node = _node(params_class)
    assert isinstance(node, Obj)
    return node


def _node(annotation: Any) -> Node:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (NotRequired, Required):
        return _node(args[0])
    if is_typeddict(annotation):
        return _object(annotation)
    if origin is typing.Literal:
        return Scalar("string", tuple(str(a) for a in args))
    if origin in (typing.Union, types.UnionType):
        return _union(args)
    if origin is list:
        return Array(_node(args[0]))
    if origin in (dict, UntypedStripeObject):
        return Hash(_node(args[-1]))
    if annotation in _SCALARS:
        return Scalar(_SCALARS[annotation])
    raise TypeError(f"The Stripe sandbox cannot read the SDK parameter type {annotation!r}.")


def _object(typed_dict: type) -> Obj:
    hints = typing.get_type_hints(typed_dict, localns=_HINT_NAMES, include_extras=True)
    fields = {name: _node(hint) for name, hint in hints.items() if name not in REQUEST_OPTIONS}
    return Obj(fields, frozenset(typed_dict.__required_keys__) - REQUEST_OPTIONS)


def _union(args: tuple[Any, ...]) -> Node:
    unsettable = any(_is_empty_literal(a) for a in args)
    members = [a for a in args if not _is_empty_literal(a) and a is not type(None)]
    enum = [str(v) for a in members if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)]
    # The SDK adds a bare ``str`` next to every enum so that new values do not break old clients;
    # the API itself accepts only the listed values.
    others = [a for a in members if typing.get_origin(a) is not typing.Literal and not (enum and a is str)]
    options: list[Node] = [Scalar("string", tuple(enum))] if enum else []
    for node in map(_node, others):
        if node not in options:  # ``Dict[str, str]`` and ``UntypedStripeObject[str]`` read the same
            options.append(node)
    if not options:  # only Literal[""]
        return Scalar("string", ("",), unsettable=True)
    if len(options) == 1:
        return dataclasses.replace(options[0], unsettable=unsettable)
    return Choice(tuple(options), unsettable=unsettable)


def _is_empty_literal(annotation: Any) -> bool:
    return typing.get_origin(annotation) is typing.Literal and typing.get_args(annotation) == ("",)


# -- validation ------------------------------------------------------------------------------


def validate(schema: Obj, params: dict[str, Any]) -> None:
    """Raise the error Stripe answers when ``params`` (parsed bracket notation) do not fit ``schema``."""
    _check_object(schema, params, "")


def _name(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key


def _check(node: Node, value: Any, name: str) -> None:
    if value == "":
        if not node.unsettable:
            raise _empty(name)
        return
    if isinstance(node, Scalar):
        _check_scalar(node, value, name)
    elif isinstance(node, Array):
        _check_array(node, value, name)
    elif isinstance(node, Hash):
        _check_hash(node, value, name)
    elif isinstance(node, Obj):
        if not isinstance(value, dict):
            raise invalid_param(name, f"Invalid object: {name} must be a hash.", code=None)
        _check_object(node, value, name)
    else:
        _check_choice(node, value, name)


def _check_object(node: Obj, value: dict[str, Any], name: str) -> None:
    for key, item in value.items():
        child = node.fields.get(key)
        if child is None:
            raise unknown_param(_name(name, key))
        _check(child, item, _name(name, key))
    missing = sorted(node.required - set(value))
    if missing:
        raise missing_param(_name(name, missing[0]))


def _check_array(node: Array, value: Any, name: str) -> None:
    if isinstance(value, dict):
        # Keys that are not indexes (``a[x]=1``) did not turn into a list while parsing.
        raise invalid_param(name, f"Invalid array: {name} must be an array.", code=None)
    if not isinstance(value, list):
        raise invalid_param(name, f"Invalid array: {name} must be an array, not a single value.", code=None)
    for index, item in enumerate(value):
        _check(node.item, item, f"{name}[{index}]")


def _check_hash(node: Hash, value: Any, name: str) -> None:
    if isinstance(value, list):  # keys that happened to be 0, 1, 2, ...
        value = {str(index): item for index, item in enumerate(value)}
    if not isinstance(value, dict):
        raise invalid_param(name, f"Invalid hash: {name} must be a hash of key-value pairs.", code=None)
    for key, item in value.items():
        if item == "" and isinstance(node.value, Scalar) and node.value.kind == "string":
            continue  # "Individual keys can be unset by posting an empty value to them" (metadata)
        _check(node.value, item, _name(name, key))


def _check_scalar(node: Scalar, value: Any, name: str) -> None:
    if not isinstance(value, str):
        raise invalid_param(name, f"Invalid {node.kind}: {name} must be a single value, not a hash or an array.",
                            code="parameter_invalid_integer" if node.kind == "integer" else None)
    if node.kind == "integer" and not _INTEGER.fullmatch(value):
        raise invalid_param(name, f"Invalid integer: {value}", code="parameter_invalid_integer")
    if node.kind == "boolean" and value not in ("true", "false"):
        raise invalid_param(name, f"Invalid boolean: {value}", code=None)
    if node.kind == "decimal" and not _is_decimal(value):
        raise invalid_param(name, f"Invalid decimal: {value}", code=None)
    if node.enum is not None and value not in node.enum:
        raise invalid_param(name, enum_message(name, node.enum), code=None)


def _is_decimal(value: str) -> bool:
    try:
        return decimal.Decimal(value).is_finite()
    except decimal.InvalidOperation:
        return False


def _check_choice(node: Choice, value: Any, name: str) -> None:
    errors = []
    for option in _by_shape(node.options, value):
        try:
            _check(option, value, name)
            return
        except StripeError as error:
            errors.append(error)
    if errors:
        raise errors[0]
    raise invalid_param(name, f"Invalid value for {name}.", code=None)


def _by_shape(options: tuple[Node, ...], value: Any) -> list[Node]:
    """The options worth trying for this value, the most likely first."""
    if isinstance(value, dict):
        return [o for o in options if isinstance(o, (Obj, Hash))] or list(options)
    if isinstance(value, list):
        return [o for o in options if isinstance(o, (Array, Hash))] or list(options)
    return [o for o in options if isinstance(o, Scalar)] or list(options)


def enum_message(name: str, values: tuple[str, ...]) -> str:
    """Stripe's wording for a value outside an enum."""
    if len(values) == 1:
        return f"Invalid {name}: must be {values[0]}"
    return f"Invalid {name}: must be one of {', '.join(values[:-1])}, or {values[-1]}"


def _empty(name: str) -> StripeError:
    return StripeError(
        f"You passed an empty string for '{name}'. We assume empty values are an attempt to unset a parameter; "
        f"however '{name}' cannot be unset. You should remove '{name}' from your request or supply a non-empty value.",
        code="parameter_invalid_empty", param=name)


# -- the endpoints the sandbox serves --------------------------------------------------------

# (method, path with ``{id}`` for an object id) -> the SDK's params TypedDict for that call.
_RESOURCES = {
    "customers": "Customer", "tax_rates": "TaxRate", "coupons": "Coupon", "promotion_codes": "PromotionCode",
    "refunds": "Refund", "credit_notes": "CreditNote", "invoices": "Invoice", "invoice_payments": "InvoicePayment",
    "payment_intents": "PaymentIntent", "charges": "Charge", "disputes": "Dispute", "events": "Event",
    "products": "Product", "prices": "Price", "invoiceitems": "InvoiceItem",
    "payment_method_configurations": "PaymentMethodConfiguration", "accounts": "Account",
    "application_fees": "ApplicationFee",
}
_CREATED_HERE = ("customers", "tax_rates", "coupons", "promotion_codes", "refunds", "credit_notes", "invoices",
                 "invoiceitems", "payment_method_configurations", "accounts")
_NESTED = {
    ("GET", "/v1/checkout/sessions"): stripe.params.checkout.SessionListParams,
    ("POST", "/v1/checkout/sessions"): stripe.params.checkout.SessionCreateParams,
    ("GET", "/v1/checkout/sessions/{id}"): stripe.params.checkout.SessionRetrieveParams,
    ("POST", "/v1/checkout/sessions/{id}/expire"): stripe.params.checkout.SessionExpireParams,
    ("GET", "/v1/checkout/sessions/{id}/line_items"): stripe.params.checkout.SessionLineItemListParams,
    ("GET", "/v1/invoices/{id}/lines"): stripe.params.InvoiceLineItemListParams,
    ("GET", "/v1/credit_notes/{id}/lines"): stripe.params.CreditNoteLineItemListParams,
    ("POST", "/v1/credit_notes/{id}/void"): stripe.params.CreditNoteVoidCreditNoteParams,
    ("GET", "/v1/charges/{id}/refunds"): stripe.params.ChargeListRefundsParams,
    ("POST", "/v1/disputes/{id}"): stripe.params.DisputeUpdateParams,
    ("POST", "/v1/disputes/{id}/close"): stripe.params.DisputeCloseParams,
    ("POST", "/v1/customers/{id}"): stripe.params.CustomerUpdateParams,
    ("POST", "/v1/customers/{id}/balance_transactions"): stripe.params.CustomerBalanceTransactionCreateParams,
    ("GET", "/v1/customers/{id}/balance_transactions"): stripe.params.CustomerBalanceTransactionListParams,
    ("GET", "/v1/customers/{id}/balance_transactions/{id}"): stripe.params.CustomerBalanceTransactionRetrieveParams,
    # The StripeClient's ``payment_method_configurations.update`` params (``PaymentMethodConfigurationModifyParams``
    # are the same fields, for the legacy resource API).
    ("POST", "/v1/payment_method_configurations/{id}"): stripe.params.PaymentMethodConfigurationUpdateParams,
    ("POST", "/v1/invoices/{id}/add_lines"): stripe.params.InvoiceAddLinesParams,
    ("POST", "/v1/invoices/{id}/finalize"): stripe.params.InvoiceFinalizeInvoiceParams,
    ("POST", "/v1/invoices/{id}/send"): stripe.params.InvoiceSendInvoiceParams,
    ("POST", "/v1/invoices/{id}/void"): stripe.params.InvoiceVoidInvoiceParams,
    ("POST", "/v1/invoices/{id}/mark_uncollectible"): stripe.params.InvoiceMarkUncollectibleParams,
    ("POST", "/v1/invoices/{id}/attach_payment"): stripe.params.InvoiceAttachPaymentParams,
    ("POST", "/v1/payment_records/report_payment"): stripe.params.PaymentRecordReportPaymentParams,
    ("GET", "/v1/payment_records/{id}"): stripe.params.PaymentRecordRetrieveParams,
    # Connect: the StripeClient's ``accounts.update`` (``AccountModifyParams`` are the legacy resource API's).
    ("POST", "/v1/accounts/{id}"): stripe.params.AccountUpdateParams,
    ("POST", "/v1/account_links"): stripe.params.AccountLinkCreateParams,
}


def _endpoint_classes() -> dict[tuple[str, str], type]:
    classes = dict(_NESTED)
    for collection, resource in _RESOURCES.items():
        classes[("GET", f"/v1/{collection}")] = getattr(stripe.params, f"{resource}ListParams")
        classes[("GET", f"/v1/{collection}/{{id}}")] = getattr(stripe.params, f"{resource}RetrieveParams")
        if collection in _CREATED_HERE:
            classes[("POST", f"/v1/{collection}")] = getattr(stripe.params, f"{resource}CreateParams")
    return classes


ENDPOINT_PARAMS: dict[tuple[str, str], type] = _endpoint_classes()
SCHEMAS: dict[tuple[str, str], Obj] = {key: schema_of(cls) for key, cls in ENDPOINT_PARAMS.items()}


def _event_types() -> frozenset[str]:
    enabled = schema_of(stripe.params.WebhookEndpointCreateParams).fields["enabled_events"]
    assert isinstance(enabled, Array) and isinstance(enabled.item, Scalar) and enabled.item.enum
    return frozenset(enabled.item.enum) - {"*"}


# Every v1 event type of the pinned API: what a webhook endpoint can subscribe to.
EVENT_TYPES = _event_types()


def endpoint_schema(method: str, path_template: str) -> Obj | None:
    """The parameter tree of ``method path_template`` (e.g. ``GET /v1/customers/{id}``), if served."""
    return SCHEMAS.get((method.upper(), path_template))
