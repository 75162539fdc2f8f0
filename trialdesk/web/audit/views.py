"""Readable audit history: who changed what, when (UTC), old → new, and why."""

from __future__ import annotations

from typing import Any

_SKIP = {"updated_at", "created_at", "recorded_at"}


def history_rows(instance: Any) -> list[dict[str, Any]]:
    """One row per historical record of ``instance``, with field-level changes."""
    rows = []
    records = list(instance.history.all().order_by("history_date", "history_id"))
    previous = None
    for record in records:
        changes = []
        if previous is not None:
            delta = record.diff_against(previous)
            changes = [{"field": c.field, "old": c.old, "new": c.new}
                       for c in delta.changes if c.field not in _SKIP]
        rows.append({
            "when": record.history_date,
            "who": record.history_user.get_username() if record.history_user else "system",
            "action": {"+": "created", "~": "changed", "-": "deleted"}[record.history_type],
            "object": f"{instance._meta.verbose_name} {instance}",
            "changes": changes,
            "reason": record.history_change_reason or "",
        })
        previous = record
    return rows
