"""Stripe list envelopes (pagination, ``created`` filters) and ``expand[]``."""

from __future__ import annotations

from typing import Any

from .errors import StripeError, invalid_param, resource_missing
from .params import Params
from .state import OBJECT_LABELS, SandboxState

_RANGE_KEYS = ("gt", "gte", "lt", "lte")


def list_envelope(data: list[dict[str, Any]], url: str, has_more: bool = False) -> dict[str, Any]:
    """``{"object": "list", "data": [...], "has_more": ..., "url": ...}``."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def paginate(state: SandboxState, items: list[dict[str, Any]], params: Params, url: str,
             filters: dict[str, str] | None = None) -> dict[str, Any]:
    """One page of ``items`` (newest first) after the standard list parameters."""
    items = filter_created(items, params)
    for param_name, field_name in (filters or {}).items():
        wanted = params.string(param_name)
        if wanted is not None:
            items = [item for item in items if _matches(item.get(field_name), wanted)]
    limit = params.integer("limit", default=10, minimum=1, maximum=100)
    page, has_more = _page(items, params, limit)
    return list_envelope([state.render(item) for item in page], url, has_more)


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return wanted == ("true" if value else "false")
    return value == wanted


def _page(items: list[dict[str, Any]], params: Params, limit: int) -> tuple[list[dict[str, Any]], bool]:
    after, before = params.string("starting_after"), params.string("ending_before")
    if after and before:
        raise invalid_param("ending_before", "You may only specify one of these parameters: ending_before, starting_after.")
    if after:
        start = _index_of(items, after, "starting_after") + 1
        return items[start:start + limit], len(items) > start + limit
    if before:
        end = _index_of(items, before, "ending_before")
        return items[max(0, end - limit):end], end - limit > 0
    return items[:limit], len(items) > limit


def _index_of(items: list[dict[str, Any]], object_id: str, param: str) -> int:
    for index, item in enumerate(items):
        if item["id"] == object_id:
            return index
    label = OBJECT_LABELS.get(items[0]["object"], "object") if items else "object"
    raise resource_missing(label, object_id, param=param, status=400)


def filter_created(items: list[dict[str, Any]], params: Params) -> list[dict[str, Any]]:
    """Apply ``created=T`` or ``created[gt|gte|lt|lte]=T``."""
    return filter_range(items, params, "created")


def filter_range(items: list[dict[str, Any]], params: Params, key: str) -> list[dict[str, Any]]:
    """Apply ``key=T`` or ``key[gt|gte|lt|lte]=T`` to a timestamp field (``created``, ``due_date``)."""
    wanted = params.raw(key)
    if wanted in (None, ""):
        return items
    if not isinstance(wanted, dict):
        exact = params.integer(key)
        return [item for item in items if item[key] == exact]
    bounds = params.sub(key)
    bounds.reject_unimplemented(_RANGE_KEYS)
    limits = {bound: bounds.integer(bound) for bound in _RANGE_KEYS}
    return [item for item in items if item[key] is not None and _in_range(item[key], limits)]


def _in_range(value: int, limits: dict[str, int | None]) -> bool:
    checks = (
        (limits["gt"], lambda bound: value > bound),
        (limits["gte"], lambda bound: value >= bound),
        (limits["lt"], lambda bound: value < bound),
        (limits["lte"], lambda bound: value <= bound),
    )
    return all(check(bound) for bound, check in checks if bound is not None)


def expand(state: SandboxState, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Replace ids named by ``expand[]`` paths (``invoice``, ``payment_intent.latest_charge``, ``data.x``)."""
    for path in paths:
        parts = path.split(".")
        if len(parts) > 4:
            raise invalid_param("expand", f"You cannot expand more than 4 levels of a property: {path}.")
        _expand(state, obj, parts, path)
    return obj


def _expand(state: SandboxState, node: Any, parts: list[str], path: str) -> None:
    if not parts or node is None:
        return
    if isinstance(node, list):
        for item in node:
            _expand(state, item, parts, path)
        return
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict) and node.get("object") == "invoice" and head == "payments" and head not in node:
        node["payments"] = _invoice_payments(state, node["id"])  # includable: only there when expanded
    if not isinstance(node, dict) or head not in node:
        raise _not_expandable(path)
    value = node[head]
    if isinstance(value, str):
        target = state.get(value)
        if target is None:
            raise _not_expandable(path)
        value = node[head] = state.render(target)
    elif value is not None and not isinstance(value, (dict, list)):
        raise _not_expandable(path)
    _expand(state, value, rest, path)


def _invoice_payments(state: SandboxState, invoice_id: str) -> dict[str, Any]:
    payments = [state.render(p) for p in state.all("invoice_payment") if p["invoice"] == invoice_id]
    return {**list_envelope(payments, f"/v1/invoice_payments?invoice={invoice_id}"), "total_count": len(payments)}


def _not_expandable(path: str) -> StripeError:
    return invalid_param("expand", f"This property cannot be expanded ({path}).")
