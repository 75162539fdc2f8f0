"""Append audit rows to the hash chain, and verify the chain against the stored rows.

A row's content is its field values (JSON, sorted keys); the chain hash of link n is
sha256(chain hash of link n−1 + row hash). Changing, deleting or inserting a history
row outside the app breaks the chain at that row; ``trialdesk audit verify`` reports it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from trialdesk.web.audit.models import ChainHead, ChainLink

GENESIS = "0" * 64


def _utc(value: Any) -> Any:
    """Aware datetimes in UTC, so a row digests alike before saving and after reading back
    (the database returns UTC whatever offset the caller gave)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def row_digest(instance: Any) -> str:
    data = {f.attname: _utc(getattr(instance, f.attname))
            for f in instance._meta.concrete_fields}
    text = json.dumps(data, sort_keys=True, cls=DjangoJSONEncoder, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _link_hash(previous: str, row: str) -> str:
    return hashlib.sha256((previous + row).encode()).hexdigest()


def chain_history_row(sender: Any, history_instance: Any, **kwargs: Any) -> None:
    """Receiver for simple-history's ``post_create_historical_record``."""
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().first()
        if head is None:
            ChainHead.objects.create()
            head = ChainHead.objects.select_for_update().first()
        previous = head.last_link.chain_sha256 if head.last_link else GENESIS
        row = row_digest(history_instance)
        link = ChainLink.objects.create(
            history_model=history_instance._meta.label, history_id=history_instance.pk,
            row_sha256=row, chain_sha256=_link_hash(previous, row))
        head.last_link = link
        head.save(update_fields=["last_link"])


@dataclass(frozen=True)
class ChainReport:
    links: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.links} rows verified"
        return f"audit chain BROKEN ({len(self.problems)} problems in {self.links} rows):\n" \
            + "\n".join(f"  - {p}" for p in self.problems)


def verify_chain() -> ChainReport:
    problems: list[str] = []
    previous = GENESIS
    count = 0
    linked: dict[str, set[int]] = {}
    for link in ChainLink.objects.order_by("id").iterator():
        count += 1
        model = apps.get_model(link.history_model)
        linked.setdefault(link.history_model, set()).add(link.history_id)
        row = model.objects.filter(pk=link.history_id).first()
        where = f"{link.history_model} #{link.history_id}"
        if row is None:
            problems.append(f"{where}: audit row deleted")
        elif row_digest(row) != link.row_sha256:
            problems.append(f"{where}: audit row changed after it was written")
        if _link_hash(previous, link.row_sha256) != link.chain_sha256:
            problems.append(f"{where}: chain link altered")
        previous = link.chain_sha256
    for label, ids in linked.items():
        model = apps.get_model(label)
        extra = model.objects.exclude(pk__in=ids).values_list("pk", flat=True)
        problems += [f"{label} #{pk}: audit row not in the chain (inserted outside the app)"
                     for pk in extra]
    return ChainReport(count, tuple(problems))
