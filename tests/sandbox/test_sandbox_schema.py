"""Parameters checked against the installed SDK's typed params: one test per kind of refusal."""

# No ``from __future__ import annotations`` here: the sample TypedDicts below must keep NotRequired
# unquoted, as the SDK does, for their required keys to be known.

import typing

import pytest
import requests
import stripe
from typing_extensions import NotRequired, TypedDict

from lms_stripe_plugin.sandbox import create_app
from lms_stripe_plugin.sandbox.api import COLLECTIONS
from lms_stripe_plugin.sandbox.schema import (
    ENDPOINT_PARAMS, REQUEST_OPTIONS, Array, Choice, Hash, Obj, Scalar, endpoint_schema, schema_of,
)

AUTH = {"Authorization": "Bearer sk_test_schema"}


class _Inner(TypedDict):
    name: str
    size: NotRequired[int]


class _Sample(TypedDict):
    """The shapes found in ``stripe.params``, written the way the SDK writes them (as strings)."""

    kind: NotRequired["typing.Literal['a', 'b']|str"]
    note: NotRequired["typing.Literal['']|str"]
    tags: NotRequired[typing.List[str]]
    metadata: NotRequired[typing.Dict[str, str]]
    created: NotRequired["_Inner|int"]
    flag: NotRequired[bool]


def _refusal(call) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        call()
    assert raised.value.http_status == 400
    assert raised.value.json_body["error"]["type"] == "invalid_request_error"
    return raised.value


# -- the derived schema ----------------------------------------------------------------------


def test_session_create_schema_comes_from_the_sdk():
    schema = endpoint_schema("POST", "/v1/checkout/sessions")
    assert schema is schema_of(stripe.params.checkout.SessionCreateParams) or schema.fields.keys() == schema_of(
        stripe.params.checkout.SessionCreateParams).fields.keys()
    allowed = schema.fields["allowed_payment_method_types"]
    assert isinstance(allowed, Array) and isinstance(allowed.item, Scalar)
    assert {"card", "klarna", "sepa_debit", "ideal"} <= set(allowed.item.enum)
    assert "payment_method_types" not in schema.fields
    assert "payment_method_types" not in stripe.params.checkout.SessionCreateParams.__annotations__
    assert not REQUEST_OPTIONS & set(schema.fields)
    assert {"api_key", "idempotency_key", "stripe_account", "stripe_version"} <= REQUEST_OPTIONS
    assert schema.fields["mode"].enum == ("payment", "setup", "subscription")
    assert "currency" in schema.fields["line_items"].item.fields["price_data"].required


def test_the_walk_reads_every_shape_the_sdk_uses():
    schema = schema_of(_Sample)
    assert schema.fields["kind"] == Scalar("string", ("a", "b"))
    assert schema.fields["note"] == Scalar("string", unsettable=True)
    assert schema.fields["tags"] == Array(Scalar("string"))
    assert schema.fields["metadata"] == Hash(Scalar("string"))
    created = schema.fields["created"]
    assert isinstance(created, Choice) and isinstance(created.options[0], Obj)
    assert created.options[0].required == frozenset({"name"})
    assert schema.fields["flag"] == Scalar("boolean")


def test_every_api_route_of_the_sandbox_has_the_sdks_params():
    app = create_app()
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/") or "<path:" in rule.rule:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            for collection in (COLLECTIONS if "<collection>" in rule.rule else [None]):
                template = rule.rule.replace("<collection>", collection or "")
                for arg in rule.arguments - {"collection"}:
                    template = template.replace(f"<{arg}>", "{id}")
                served.add((method, template))
    served.add(("GET", "/v1/events/{id}"))
    missing = {key for key in served if key not in ENDPOINT_PARAMS}
    assert missing == set()
    app.extensions["stripe_sandbox"].close()


# -- refusals ------------------------------------------------------------------------------------


def test_unknown_nested_parameter_is_parameter_unknown(client, session_params):
    params = session_params()
    params["line_items"][0]["foo"] = "bar"
    error = _refusal(lambda: client.v1.checkout.sessions.create(params=params))
    assert error.code == "parameter_unknown" and error.param == "line_items[0][foo]"
    assert error.user_message == "Received unknown parameter: line_items[0][foo]"


def test_unknown_parameter_on_a_list_endpoint(client):
    error = _refusal(lambda: client.v1.refunds.list(params={"status": "succeeded"}))
    assert error.code == "parameter_unknown" and error.param == "status"


def test_value_outside_the_enum_is_refused(client, session_params):
    error = _refusal(lambda: client.v1.checkout.sessions.create(params=session_params(mode="donation")))
    assert error.param == "mode"
    assert error.user_message == "Invalid mode: must be one of payment, setup, or subscription"
    error = _refusal(lambda: client.v1.checkout.sessions.create(
        params=session_params(allowed_payment_method_types=["card", "cheque"])))
    assert error.param == "allowed_payment_method_types[1]"


def test_locale_enum_comes_from_the_sdk(client, session_params):
    assert client.v1.checkout.sessions.create(params=session_params(locale="fr")).locale == "fr"
    error = _refusal(lambda: client.v1.checkout.sessions.create(params=session_params(locale="klingon")))
    assert error.param == "locale"


def test_integer_of_the_wrong_type_is_parameter_invalid_integer(client, session_params):
    error = _refusal(lambda: client.v1.checkout.sessions.create(params=session_params(expires_at="soon")))
    assert error.code == "parameter_invalid_integer" and error.param == "expires_at"
    assert error.user_message == "Invalid integer: soon"


def test_boolean_of_the_wrong_type_is_refused(client, session_params):
    error = _refusal(lambda: client.v1.checkout.sessions.create(params=session_params(allow_promotion_codes="yes")))
    assert error.param == "allow_promotion_codes" and error.user_message == "Invalid boolean: yes"


def test_empty_string_for_a_parameter_that_cannot_be_unset_is_parameter_invalid_empty(client, session_params):
    error = _refusal(lambda: client.v1.checkout.sessions.create(params=session_params(client_reference_id="")))
    assert error.code == "parameter_invalid_empty" and error.param == "client_reference_id"
    assert "cannot be unset" in error.user_message


def test_empty_string_unsets_where_the_sdk_allows_it(client):
    customer = client.v1.customers.create(params={"email": "u@example.com", "business_name": ""})
    assert customer.business_name is None


def test_missing_required_parameter_is_parameter_missing(client, session_params):
    error = _refusal(lambda: client.v1.tax_rates.create(params={"display_name": "VAT", "inclusive": True}))
    assert error.code == "parameter_missing" and error.param == "percentage"
    assert error.user_message == "Missing required param: percentage."
    params = session_params(automatic_tax={"liability": {"type": "self"}})
    error = _refusal(lambda: client.v1.checkout.sessions.create(params=params))
    assert error.code == "parameter_missing" and error.param == "automatic_tax[enabled]"


def test_hash_where_a_string_is_expected_is_refused(sandbox):
    response = requests.post(f"{sandbox.url}/v1/customers", data={"email[first]": "a@example.com"},
                             headers=AUTH, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["param"] == "email"


def test_single_value_where_an_array_is_expected_is_refused(sandbox):
    response = requests.get(f"{sandbox.url}/v1/customers", params={"expand": "data.x"}, headers=AUTH, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["param"] == "expand"


def test_real_parameter_the_sandbox_does_not_model_is_parameter_unsupported(client, session_params):
    error = _refusal(lambda: client.v1.checkout.sessions.create(
        params=session_params(payment_method_collection="always")))
    assert error.code == "parameter_unsupported" and error.param == "payment_method_collection"
    assert "does not support" in error.user_message


def test_retrieve_accepts_only_expand(client, sandbox):
    customer = client.v1.customers.create(params={"email": "r@example.com"})
    response = requests.get(f"{sandbox.url}/v1/customers/{customer.id}", params={"limit": 3}, headers=AUTH,
                            timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "parameter_unknown"
