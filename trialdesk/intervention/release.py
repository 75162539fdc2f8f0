"""Is an MSC product released for infusion? Each release criterion of the protocol.

``protocol.intervention.release_criteria`` (``domain.md`` §6.3) against the
``msc_product`` form: viability ≥ the minimum (%), sterility (no growth, or a negative
Gram stain for release before the culture result, as the RUMCESS protocol allows),
endotoxin ≤ the maximum (EU/mL, inclusive), mycoplasma negative, identity (ISCT
markers) met, a named person's release, and — at infusion time — not expired.
Each item is ``pass`` / ``fail`` / ``pending`` (not recorded or result awaited);
the product is released only when every item passes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trialdesk.clinical.timeutil import ensure_aware, parse_aware
from trialdesk.protocol.schema import ReleaseCriteria

#: sterility results that allow release (culture pending: Gram stain negative)
STERILE = frozenset({"no_growth", "gram_stain_negative"})


class ItemStatus(StrEnum):
    PASS = "pass"  # noqa: S105 - a test result, not a password
    FAIL = "fail"
    PENDING = "pending"


@dataclass(frozen=True)
class ReleaseItem:
    id: str
    label: str
    status: ItemStatus
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "status": self.status.value,
                "detail": self.detail}


@dataclass(frozen=True)
class ReleaseCheck:
    items: tuple[ReleaseItem, ...]

    @property
    def released(self) -> bool:
        return all(i.status is ItemStatus.PASS for i in self.items)

    def item(self, item_id: str) -> ReleaseItem:
        return next(i for i in self.items if i.id == item_id)

    def failing(self, *, include_pending: bool = True) -> tuple[ReleaseItem, ...]:
        bad = {ItemStatus.FAIL} | ({ItemStatus.PENDING} if include_pending else set())
        return tuple(i for i in self.items if i.status in bad)

    def to_dict(self) -> dict[str, Any]:
        return {"released": self.released, "items": [i.to_dict() for i in self.items]}


def time_value(values: Mapping[str, Any], key: str) -> dt.datetime | None:
    """An aware UTC time from checked values (datetime) or stored data (ISO string)."""
    value = values.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return parse_aware(value, field=key)
    return ensure_aware(value, field=key)


def _choice(item_id: str, label: str, value: Any, passing: frozenset[str], failing: str,
            ) -> ReleaseItem:
    if value in passing:
        return ReleaseItem(item_id, label, ItemStatus.PASS, str(value).replace("_", " "))
    if value == failing:
        return ReleaseItem(item_id, label, ItemStatus.FAIL, str(value).replace("_", " "))
    return ReleaseItem(item_id, label, ItemStatus.PENDING,
                       "not recorded" if value is None else "result pending")


def check_release(product: Mapping[str, Any], criteria: ReleaseCriteria | None, *,
                  at: dt.datetime | None = None) -> ReleaseCheck:
    """Each release item for ``product`` (msc_product values); expiry judged at ``at``."""
    items: list[ReleaseItem] = []
    viability = product.get("viability_percent")
    if criteria is not None:
        minimum = criteria.viability_min_percent
        if viability is None:
            items.append(ReleaseItem("viability", "Viability", ItemStatus.PENDING,
                                     "not recorded"))
        else:
            ok = float(viability) >= minimum
            items.append(ReleaseItem("viability", "Viability",
                                     ItemStatus.PASS if ok else ItemStatus.FAIL,
                                     f"{float(viability):g} % ({'≥' if ok else '<'} minimum "
                                     f"{minimum:g} %)"))
        items.append(_choice("sterility", "Sterility", product.get("sterility"), STERILE,
                             "growth"))
        limit = criteria.endotoxin_max_eu_per_ml
        if limit is not None:
            endotoxin = product.get("endotoxin_eu_per_ml")
            if endotoxin is None:
                items.append(ReleaseItem("endotoxin", "Endotoxin", ItemStatus.PENDING,
                                         "not recorded"))
            else:
                ok = float(endotoxin) <= limit
                items.append(ReleaseItem("endotoxin", "Endotoxin",
                                         ItemStatus.PASS if ok else ItemStatus.FAIL,
                                         f"{float(endotoxin):g} EU/mL ({'≤' if ok else '>'} "
                                         f"{limit:g} EU/mL)"))
        if criteria.mycoplasma is not None:
            items.append(_choice("mycoplasma", "Mycoplasma", product.get("mycoplasma"),
                                 frozenset({"negative"}), "positive"))
        if criteria.identity is not None:
            items.append(_choice("identity", "Identity", product.get("identity"),
                                 frozenset({"pass"}), "fail"))
    released_by = (product.get("released_by") or "").strip()
    items.append(ReleaseItem("released_by", "Release sign-off",
                             ItemStatus.PASS if released_by else ItemStatus.PENDING,
                             released_by or "no one has signed the release"))
    expiry = time_value(product, "expiry_at")
    if at is not None:
        if expiry is None:
            items.append(ReleaseItem("expiry", "Expiry", ItemStatus.PENDING, "not recorded"))
        else:
            ok = ensure_aware(at, field="at") <= expiry
            items.append(ReleaseItem("expiry", "Expiry",
                                     ItemStatus.PASS if ok else ItemStatus.FAIL,
                                     f"expires {expiry:%Y-%m-%d %H:%M} UTC"
                                     + ("" if ok else f"; given {at:%Y-%m-%d %H:%M} UTC")))
    return ReleaseCheck(tuple(items))
