"""Request parameters in Stripe's bracket notation (``a[b][0][c]=x``) and typed access to them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import invalid_param, missing_param, unsupported_param

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")

# Keys of these objects are chosen by the caller, so numeric keys must not turn them into lists.
_FREE_FORM = {"metadata"}


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Turn ``[("a[b][0]", "x")]`` into ``{"a": {"b": ["x"]}}``."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        _assign(root, _split_key(key), value)
    return _listify(root, parent=None)


def _split_key(key: str) -> list[str]:
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    rest = "[" + rest
    segments = _SEGMENT.findall(rest)
    # A key whose brackets do not parse cleanly is kept whole rather than guessed at.
    if "".join(f"[{s}]" for s in segments) != rest:
        return [key]
    return [head, *segments]


def _assign(node: dict[str, Any], path: list[str], value: str) -> None:
    for position, segment in enumerate(path):
        key = segment if segment != "" else str(len(node))
        if position == len(path) - 1:
            node[key] = value
            return
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child


def _listify(node: Any, parent: str | None) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value, key) for key, value in node.items()}
    if parent not in _FREE_FORM and converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


class Params:
    """Typed, validated access to one level of request parameters.

    Every accessor raises the :class:`StripeError` Stripe would answer, naming the
    parameter in bracket notation (``line_items[0][quantity]``).
    """

    def __init__(self, data: dict[str, Any] | None, prefix: str = "") -> None:
        self.data = data or {}
        self.prefix = prefix

    def name(self, key: str) -> str:
        """The full bracket-notation name of ``key`` at this level."""
        return f"{self.prefix}[{key}]" if self.prefix else key

    def has(self, key: str) -> bool:
        """Whether ``key`` was sent with a non-empty value."""
        return self.data.get(key) not in (None, "")

    def raw(self, key: str, default: Any = None) -> Any:
        """The value as parsed, without conversion."""
        return self.data.get(key, default)

    def reject_unimplemented(self, implemented: Iterable[str]) -> None:
        """Refuse keys outside ``implemented`` as parameters the sandbox does not support.

        Names the API does not have at all were already refused as ``parameter_unknown``
        by :func:`schema.validate`, so what is left here is real but not modelled.
        """
        implemented_set = set(implemented) | {"expand"}
        for key in self.data:
            if key not in implemented_set:
                raise unsupported_param(self.name(key))

    def sub(self, key: str) -> Params:
        """The nested object under ``key`` (empty when absent)."""
        value = self.data.get(key)
        if value in (None, ""):
            return Params({}, self.name(key))
        if not isinstance(value, dict):
            raise invalid_param(self.name(key), f"Invalid object for {self.name(key)}.")
        return Params(value, self.name(key))

    def objects(self, key: str) -> list[Params]:
        """The array of objects under ``key``."""
        values = self._array(key)
        result = []
        for index, value in enumerate(values):
            name = f"{self.name(key)}[{index}]"
            if not isinstance(value, dict):
                raise invalid_param(name, f"Invalid object for {name}.")
            result.append(Params(value, name))
        return result

    def strings(self, key: str) -> list[str]:
        """The array of strings under ``key``."""
        values = self._array(key)
        for index, value in enumerate(values):
            if not isinstance(value, str):
                raise invalid_param(f"{self.name(key)}[{index}]", "Invalid string.")
        return values

    def _array(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value in (None, ""):
            return []
        if isinstance(value, dict):
            raise invalid_param(self.name(key), f"Invalid array for {self.name(key)}.")
        return value if isinstance(value, list) else [value]

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        max_length: int | None = None,
        choices: Iterable[str] | None = None,
    ) -> str | None:
        """A string value, optionally limited in length or to a set of choices."""
        value = self.data.get(key)
        if value in (None, ""):
            if required:
                raise missing_param(self.name(key))
            return default
        if not isinstance(value, str):
            raise invalid_param(self.name(key), f"Invalid string: {self.name(key)}.")
        if max_length is not None and len(value) > max_length:
            raise invalid_param(
                self.name(key),
                f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
            )
        if choices is not None and value not in set(choices):
            raise invalid_param(self.name(key), _choice_message(self.name(key), list(choices)))
        return value

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """An integer value within optional bounds."""
        value = self.string(key, required=required)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise invalid_param(self.name(key), f"Invalid integer: {value}") from None
        if minimum is not None and number < minimum:
            raise invalid_param(self.name(key), f"This value must be greater than or equal to {minimum}.")
        if maximum is not None and number > maximum:
            raise invalid_param(self.name(key), f"This value must be less than or equal to {maximum}.")
        return number

    def decimal(self, key: str, *, required: bool = False) -> Decimal | None:
        """A decimal value such as a tax percentage."""
        value = self.string(key, required=required)
        if value is None:
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise invalid_param(self.name(key), f"Invalid decimal: {value}") from None
        if not number.is_finite():
            raise invalid_param(self.name(key), f"Invalid decimal: {value}")
        return number

    def boolean(self, key: str, *, required: bool = False, default: bool | None = None) -> bool | None:
        """A boolean sent as ``true``/``false``."""
        value = self.string(key, required=required)
        if value is None:
            return default
        if value not in ("true", "false"):
            raise invalid_param(self.name(key), f"Invalid boolean: {value}")
        return value == "true"

    def metadata(self, key: str = "metadata") -> dict[str, str]:
        """A metadata hash, with Stripe's limits on keys and values."""
        value = self.data.get(key)
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise invalid_param(self.name(key), "Invalid metadata: must be a hash of key-value pairs.")
        if len(value) > 50:
            raise invalid_param(self.name(key), "Invalid metadata: metadata can have at most 50 keys.")
        for meta_key, meta_value in value.items():
            _check_metadata_entry(self.name(key), meta_key, meta_value)
        return {k: v for k, v in value.items() if v != ""}


def _check_metadata_entry(name: str, key: str, value: Any) -> None:
    if len(key) > 40:
        raise invalid_param(f"{name}[{key}]", "Metadata keys can have at most 40 characters.")
    if not isinstance(value, str):
        raise invalid_param(f"{name}[{key}]", "Metadata values must be strings.")
    if len(value) > 500:
        raise invalid_param(f"{name}[{key}]", "Metadata values can have at most 500 characters.")


def _choice_message(name: str, choices: list[str]) -> str:
    if len(choices) > 1:
        listed = ", ".join(f"`{c}`" for c in choices[:-1]) + f", or `{choices[-1]}`"
    else:
        listed = f"`{choices[0]}`"
    return f"Invalid {name}: must be one of {listed}"

