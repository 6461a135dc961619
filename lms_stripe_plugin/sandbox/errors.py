"""Errors answered in the shape Stripe uses: ``{"error": {"type", "code", "message", "param"}}``."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An API error rendered as Stripe's error JSON with Stripe's HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.headers = headers or {}
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON body Stripe sends for this error."""
        error: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        if self.code:
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        if self.decline_code:
            error["decline_code"] = self.decline_code
        error.update(self.extra)
        return {"error": error}


def missing_param(param: str) -> StripeError:
    """A required parameter was not sent."""
    return StripeError(f"Missing required param: {param}.", code="parameter_missing", param=param)


def invalid_param(param: str | None, message: str, code: str = "parameter_invalid") -> StripeError:
    """A parameter was sent with a value Stripe would refuse."""
    return StripeError(message, code=code, param=param)


def unknown_param(param: str) -> StripeError:
    """A parameter Stripe does not know for this endpoint."""
    return StripeError(f"Received unknown parameter: {param}", code="parameter_unknown", param=param)


def unsupported_param(param: str) -> StripeError:
    """A real Stripe parameter that the sandbox does not implement (refused rather than ignored)."""
    return StripeError(
        f"The Stripe sandbox does not support the parameter `{param}` on this endpoint.",
        code="parameter_unsupported",
        param=param,
    )


def resource_missing(label: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    """An id that names no object: 404 in a URL, 400 when sent as a parameter."""
    return StripeError(
        f"No such {label}: '{object_id}'", status=status, code="resource_missing", param=param
    )


def card_error(message: str, code: str, decline_code: str | None = None, **extra: Any) -> StripeError:
    """A 402 card error, as a declined or invalid card produces."""
    return StripeError(
        message, status=402, type="card_error", code=code, decline_code=decline_code, extra=extra
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    """Stripe's answer to a path it does not serve."""
    return StripeError(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
        status=404,
    )


def api_error(message: str = "An unknown error occurred on the Stripe sandbox.") -> StripeError:
    """A 500 api_error."""
    return StripeError(message, status=500, type="api_error")
