"""Read the trial database, in chunks, into the export's records (``trialdesk.interop.odm``).

Subjects are read ``chunk_size`` at a time (``Allocation.objects.iterator``); for each
chunk the history rows of its forms and adverse events and its signatures are fetched in
one query each (``.values()``, no model instances), so memory holds one chunk, never
the trial. Everything comes from the audit trail (django-simple-history): each history
row is one version of the record, with its user, time (UTC) and reason. Nothing is
left out: records marked entered in error are exported with the version that retired
them (and the read is cut at ``as_of``, so a save during a long export does not mix
two states: rows written after the export began are not in it).

A record without any history row (impossible through the app, possible after a raw
database insert) is still exported, as one version made of its current values, with
the reason saying that no audit row was found.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from itertools import islice
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType

from trialdesk.interop.odm import (
    ADVERSE_EVENT,
    SYSTEM_USER,
    Audit,
    FormInstance,
    RecordVersion,
    SignatureEntry,
    SiteInfo,
    SubjectRecord,
    UserInfo,
    utc_stamp,
)
from trialdesk.web.casebook.models import FormRecord
from trialdesk.web.datamgmt.models import Signature
from trialdesk.web.randomization.models import Allocation
from trialdesk.web.safety.models import AdverseEvent
from trialdesk.web.sites.models import Site

DEFAULT_CHUNK_SIZE = 200
NO_AUDIT_ROW = "no audit row found: current values as stored"
_AE_FIELDS = ADVERSE_EVENT.field_ids


def users() -> list[UserInfo]:
    """Every account (the AdminData users), with the full name where known."""
    rows = get_user_model().objects.order_by("pk").values("username", "first_name",
                                                          "last_name")
    return [UserInfo(r["username"], f"{r['first_name']} {r['last_name']}".strip())
            for r in rows]


def sites() -> list[SiteInfo]:
    return [SiteInfo(code, name) for code, name in
            Site.objects.order_by("code").values_list("code", "name")]


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class _Users:
    """user id → login name, read once."""

    def __init__(self) -> None:
        self._names = dict(get_user_model().objects.values_list("pk", "username"))

    def __call__(self, user_id: int | None) -> str:
        return self._names.get(user_id, SYSTEM_USER) if user_id is not None else SYSTEM_USER


def _ae_values(row: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for name in _AE_FIELDS:
        value = row.get(name)
        if isinstance(value, dt.datetime):
            value = utc_stamp(value)
        values[name] = value
    return values


def _sort_key(form: FormInstance) -> tuple:
    return (form.form_id == ADVERSE_EVENT.id, form.day is None, form.day or 0,
            form.form_id, int(form.record_key))


def subjects(*, as_of: dt.datetime, site_codes: Collection[str] | None = None,
             chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[SubjectRecord]:
    """Every randomized subject (of ``site_codes``, or all sites), by subject id."""
    user = _Users()
    form_ct = ContentType.objects.get_for_model(FormRecord).pk
    ae_ct = ContentType.objects.get_for_model(AdverseEvent).pk
    allocation_ct = ContentType.objects.get_for_model(Allocation).pk
    allocations = (Allocation.objects.filter(recorded_at__lte=as_of)
                   .select_related("site").order_by("subject_id")
                   .only("pk", "subject_id", "site__code", "randomized_by_id",
                         "randomized_at"))
    if site_codes is not None:
        allocations = allocations.filter(site__code__in=list(site_codes))
    for batch in _batches(allocations.iterator(chunk_size=chunk_size), chunk_size):
        ids = [a.pk for a in batch]
        site_of = {a.pk: a.site.code for a in batch}
        forms: dict[int, list[FormInstance]] = defaultdict(list)
        _read_forms(ids, site_of, as_of, user, forms, form_ct)
        _read_adverse_events(ids, site_of, as_of, user, forms, ae_ct)
        signed = _signatures(ids, site_of, as_of, user)
        for a in batch:
            instances = []
            for f in forms.get(a.pk, []):
                key = (form_ct if f.form_id != ADVERSE_EVENT.id else ae_ct,
                       int(f.record_key))
                sigs = tuple(signed.get(key, ()))
                instances.append(FormInstance(f.form_id, f.day, f.record_key, f.versions,
                                              sigs) if sigs else f)
            yield SubjectRecord(
                subject_key=a.subject_id, site=a.site.code,
                audit=Audit(user(a.randomized_by_id), a.site.code, a.randomized_at,
                            "randomized", f"randomization.Allocation {a.pk}"),
                forms=tuple(sorted(instances, key=_sort_key)),
                signatures=tuple(signed.get((allocation_ct, a.pk), ())))


def _read_forms(ids: list[int], site_of: dict[int, str], as_of: dt.datetime, user: _Users,
                out: dict[int, list[FormInstance]], form_ct: int) -> None:
    history = (FormRecord.history.model.objects
               .filter(allocation_id__in=ids, history_date__lte=as_of)
               .order_by("id", "history_date", "history_id")
               .values("id", "allocation_id", "form_id", "day", "data", "entered_in_error",
                       "history_id", "history_date", "history_user_id",
                       "history_change_reason", "history_type"))
    by_record: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in history:
        by_record[row["id"]].append(row)
    missing = (FormRecord.objects.filter(allocation_id__in=ids, created_at__lte=as_of)
               .exclude(pk__in=list(by_record))
               .values("id", "allocation_id", "form_id", "day", "data", "entered_in_error",
                       "entered_by_id", "updated_at"))
    for row in missing:
        site = site_of[row["allocation_id"]]
        version = RecordVersion(row["data"] or {}, Audit(
            user(row["entered_by_id"]), site, row["updated_at"], NO_AUDIT_ROW,
            f"casebook.FormRecord {row['id']}"), bool(row["entered_in_error"]))
        out[row["allocation_id"]].append(
            FormInstance(row["form_id"], row["day"], str(row["id"]), (version,)))
    for pk, rows in by_record.items():
        last = rows[-1]
        site = site_of[last["allocation_id"]]
        versions = tuple(
            RecordVersion(r["data"] or {}, Audit(
                user(r["history_user_id"]), site, r["history_date"],
                r["history_change_reason"] or "",
                f"casebook.FormRecord {pk} history {r['history_id']}"),
                bool(r["entered_in_error"]) or r["history_type"] == "-")
            for r in rows)
        out[last["allocation_id"]].append(
            FormInstance(last["form_id"], last["day"], str(pk), versions))


def _read_adverse_events(ids: list[int], site_of: dict[int, str], as_of: dt.datetime,
                         user: _Users, out: dict[int, list[FormInstance]],
                         ae_ct: int) -> None:
    history = (AdverseEvent.history.model.objects
               .filter(allocation_id__in=ids, history_date__lte=as_of)
               .order_by("id", "history_date", "history_id")
               .values("id", "allocation_id", "entered_in_error", "history_id",
                       "history_date", "history_user_id", "history_change_reason",
                       "history_type", *_AE_FIELDS))
    by_event: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in history:
        by_event[row["id"]].append(row)
    for pk, rows in by_event.items():
        site = site_of[rows[-1]["allocation_id"]]
        versions = tuple(
            RecordVersion(_ae_values(r), Audit(
                user(r["history_user_id"]), site, r["history_date"],
                r["history_change_reason"] or "",
                f"safety.AdverseEvent {pk} history {r['history_id']}"),
                bool(r["entered_in_error"]) or r["history_type"] == "-")
            for r in rows)
        out[rows[-1]["allocation_id"]].append(
            FormInstance(ADVERSE_EVENT.id, None, str(pk), versions))


def _signatures(ids: list[int], site_of: dict[int, str], as_of: dt.datetime,
                user: _Users) -> dict[tuple[int, int], list[SignatureEntry]]:
    signed: dict[tuple[int, int], list[SignatureEntry]] = defaultdict(list)
    rows = (Signature.objects.filter(allocation_id__in=ids, signed_at__lte=as_of)
            .order_by("signed_at", "pk")
            .values("allocation_id", "content_type_id", "object_id", "signer_id",
                    "printed_name", "meaning", "signed_at", "digest"))
    for r in rows:
        signed[(r["content_type_id"], r["object_id"])].append(SignatureEntry(
            user(r["signer_id"]), site_of[r["allocation_id"]], r["meaning"], r["signed_at"],
            r["digest"], r["printed_name"]))
    return signed
