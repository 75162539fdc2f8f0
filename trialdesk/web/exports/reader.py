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

Besides the CRF records, each subject carries its screening record (every version,
with the eligibility decision recomputed at the time of each save), the allocation
(only when asked: open-label protocols), the steps of every query on its records with
the thread's messages, the source-data verifications, its lock changes and its
protocol deviations with their acknowledgement (all as :class:`~trialdesk.interop.odm.Note`,
read from their own history and cut at ``as_of`` like the rest).
:func:`screened_only` yields the patients screened but never randomized, keyed by
their screening number; :func:`trial_notes` the trial-wide lock changes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from itertools import islice
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType

from trialdesk.eligibility import evaluate
from trialdesk.errors import TrialError
from trialdesk.interop.odm import (
    ADVERSE_EVENT,
    SYSTEM_USER,
    Audit,
    FormInstance,
    Note,
    RecordVersion,
    SignatureEntry,
    SiteInfo,
    SubjectRecord,
    UserInfo,
    utc_stamp,
)
from trialdesk.interop.record_forms import (
    RANDOMIZATION_EVENT_OID,
    RANDOMIZATION_FORM_ID,
    SCREENING_EVENT_OID,
    SCREENING_FORM_ID,
    screening_form,
    screening_values,
)
from trialdesk.protocol import Protocol
from trialdesk.web.casebook.models import Deviation, FormRecord
from trialdesk.web.datamgmt.models import DataLock, Query, QueryMessage, SdvMark, Signature
from trialdesk.web.randomization.models import Allocation, AllocationSource
from trialdesk.web.safety.models import AdverseEvent
from trialdesk.web.screening.models import Screening, ScreeningStatus
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
    first = {SCREENING_FORM_ID: 0, RANDOMIZATION_FORM_ID: 1}.get(form.form_id, 2)
    return (first, form.form_id == ADVERSE_EVENT.id, form.day is None, form.day or 0,
            form.form_id, int(form.record_key))


def subjects(protocol: Protocol, *, as_of: dt.datetime,
             site_codes: Collection[str] | None = None,
             chunk_size: int = DEFAULT_CHUNK_SIZE,
             include_allocation: bool = False) -> Iterator[SubjectRecord]:
    """Every randomized subject (of ``site_codes``, or all sites), by subject id.

    ``include_allocation``: add the ``F.randomization`` form (arm, stratum, slot); the
    caller decides from the protocol's masking (``record_forms.allocation_exportable``).
    """
    user = _Users()
    form_ct = ContentType.objects.get_for_model(FormRecord).pk
    ae_ct = ContentType.objects.get_for_model(AdverseEvent).pk
    allocation_ct = ContentType.objects.get_for_model(Allocation).pk
    screening_def = screening_form(protocol)
    allocations = (Allocation.objects.filter(recorded_at__lte=as_of)
                   .select_related("site", "rlist").order_by("subject_id")
                   .only("pk", "subject_id", "site__code", "randomized_by_id",
                         "randomized_at", "screening_id", "arm", "stratum", "method",
                         "sequence", "source", "arm_recorded_by_site", "discrepancy",
                         "rlist__label", "rlist__commitment_sha256"))
    if site_codes is not None:
        allocations = allocations.filter(site__code__in=list(site_codes))
    for batch in _batches(allocations.iterator(chunk_size=chunk_size), chunk_size):
        ids = [a.pk for a in batch]
        site_of = {a.pk: a.site.code for a in batch}
        forms: dict[int, list[FormInstance]] = defaultdict(list)
        _read_forms(ids, site_of, as_of, user, forms, form_ct)
        _read_adverse_events(ids, site_of, as_of, user, forms, ae_ct)
        signed = _signatures(ids, site_of, as_of, user)
        record_notes = _record_notes(ids, site_of, as_of, user)
        subject_notes = _subject_notes(ids, site_of, as_of, user)
        screenings = _screening_forms(
            protocol, screening_def, {a.screening_id: a.site.code for a in batch}, as_of,
            user)
        for a in batch:
            instances = []
            notes_of = record_notes.get(a.pk, {})
            for f in forms.get(a.pk, []):
                key = (form_ct if f.form_id != ADVERSE_EVENT.id else ae_ct,
                       int(f.record_key))
                sigs = tuple(signed.get(key, ()))
                notes = tuple(notes_of.pop(key, ()))
                instances.append(FormInstance(f.form_id, f.day, f.record_key, f.versions,
                                              sigs, notes) if sigs or notes else f)
            leftover = [n for ns in notes_of.values() for n in ns]  # other record types
            if a.screening_id in screenings:
                instances.append(screenings[a.screening_id])
            if include_allocation:
                instances.append(_randomization_form(a, user))
            yield SubjectRecord(
                subject_key=a.subject_id, site=a.site.code,
                audit=Audit(user(a.randomized_by_id), a.site.code, a.randomized_at,
                            "randomized", f"randomization.Allocation {a.pk}"),
                forms=tuple(sorted(instances, key=_sort_key)),
                signatures=tuple(signed.get((allocation_ct, a.pk), ())),
                notes=tuple(subject_notes.get(a.pk, [])) + tuple(leftover))


def screened_only(protocol: Protocol, *, as_of: dt.datetime,
                  site_codes: Collection[str] | None = None,
                  chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[SubjectRecord]:
    """Every patient screened but not randomized by ``as_of`` (open, not enrolled,
    entered in error), keyed by the screening number, with the screening form."""
    user = _Users()
    definition = screening_form(protocol)
    randomized = Allocation.objects.filter(recorded_at__lte=as_of).values("screening_id")
    rows = (Screening.objects.filter(created_at__lte=as_of).exclude(pk__in=randomized)
            .select_related("site").order_by("screening_number")
            .only("pk", "screening_number", "site__code", "created_by_id", "created_at"))
    if site_codes is not None:
        rows = rows.filter(site__code__in=list(site_codes))
    for batch in _batches(rows.iterator(chunk_size=chunk_size), chunk_size):
        forms = _screening_forms(protocol, definition, {s.pk: s.site.code for s in batch},
                                 as_of, user)
        for s in batch:
            yield SubjectRecord(
                subject_key=s.screening_number, site=s.site.code,
                audit=Audit(user(s.created_by_id), s.site.code, s.created_at,
                            "screening logged", f"screening.Screening {s.pk}"),
                forms=(forms[s.pk],) if s.pk in forms else (), randomized=False)


def trial_notes(*, as_of: dt.datetime) -> list[Note]:
    """The trial-wide lock changes up to ``as_of`` (they apply to every site)."""
    user = _Users()
    rows = (DataLock.history.model.objects
            .filter(allocation__isnull=True, changed_by__isnull=False,
                    history_date__lte=as_of)
            .order_by("history_date", "history_id")
            .values("id", "locked", "reason", "changed_by_id", "changed_at", "history_id",
                    "history_date"))
    return [_lock_note(r, "", "Trial", user) for r in rows]


# --- records outside the casebook forms ------------------------------------------------------


def _decision(protocol: Protocol, record: dict[str, Any], at: dt.datetime,
              site: str) -> str | None:
    """The eligibility engine's decision on the record as saved, at the time it was saved
    (None when the record cannot be evaluated, e.g. a site the protocol does not list)."""
    try:
        return evaluate(protocol, record, at, site_id=site).decision.value
    except TrialError:
        return None


def _screening_forms(protocol: Protocol, definition: Any, site_of: dict[int, str],
                     as_of: dt.datetime, user: _Users) -> dict[int, FormInstance]:
    """Screening id → its form, one version per history row (``SE.SCREENING``)."""
    history = (Screening.history.model.objects
               .filter(id__in=list(site_of), history_date__lte=as_of)
               .order_by("id", "history_date", "history_id")
               .values("id", "screening_number", "record", "status", "not_enrolled_reason",
                       "history_id", "history_date", "history_user_id",
                       "history_change_reason", "history_type"))
    by_id: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in history:
        by_id[row["id"]].append(row)
    missing = (Screening.objects.filter(pk__in=list(site_of)).exclude(pk__in=list(by_id))
               .values("id", "screening_number", "record", "status", "not_enrolled_reason",
                       "created_by_id", "updated_at"))
    for row in missing:
        by_id[row["id"]].append({**row, "history_id": None, "history_date": row["updated_at"],
                                 "history_user_id": row["created_by_id"],
                                 "history_change_reason": NO_AUDIT_ROW, "history_type": "+"})
    out = {}
    for pk, rows in by_id.items():
        site = site_of[pk]
        versions = []
        for r in rows:
            record = r["record"] or {}
            values = screening_values(
                definition, record, screening_number=r["screening_number"],
                status=r["status"], not_enrolled_reason=r["not_enrolled_reason"],
                decision=_decision(protocol, record, r["history_date"], site))
            source = f"screening.Screening {pk}" + (
                f" history {r['history_id']}" if r["history_id"] else "")
            versions.append(RecordVersion(values, Audit(
                user(r["history_user_id"]), site, r["history_date"],
                r["history_change_reason"] or "", source),
                r["status"] == ScreeningStatus.ENTERED_IN_ERROR or r["history_type"] == "-"))
        out[pk] = FormInstance(SCREENING_FORM_ID, None, str(pk), tuple(versions),
                               event=SCREENING_EVENT_OID)
    return out


def _randomization_form(a: Allocation, user: _Users) -> FormInstance:
    """The allocation as one ``Insert`` (an Allocation is created once, never edited)."""
    values = {"arm": a.arm, "stratum": a.stratum, "randomized_at": utc_stamp(a.randomized_at),
              "method": a.method, "list_label": a.rlist.label if a.rlist else None,
              "list_commitment_sha256": a.rlist.commitment_sha256 if a.rlist else None,
              "sequence": a.sequence, "emergency": a.source == AllocationSource.EMERGENCY,
              "arm_recorded_by_site": a.arm_recorded_by_site or None,
              "discrepancy": a.discrepancy or None}
    audit = Audit(user(a.randomized_by_id), a.site.code, a.randomized_at, "randomized",
                  f"randomization.Allocation {a.pk}")
    return FormInstance(RANDOMIZATION_FORM_ID, None, str(a.pk),
                        (RecordVersion(values, audit),), event=RANDOMIZATION_EVENT_OID)


_PAST = {"raise": "raised", "answer": "answered", "close": "closed", "reopen": "reopened",
         "withdraw": "withdrawn"}


def _record_notes(ids: list[int], site_of: dict[int, str], as_of: dt.datetime,
                  user: _Users) -> dict[int, dict[tuple[int, int], list[Note]]]:
    """allocation → (content type, record id) → query steps and SDV marks, by time."""
    out: dict[int, dict[tuple[int, int], list[Note]]] = defaultdict(lambda: defaultdict(list))
    queries = {q["id"]: q for q in Query.objects.filter(allocation_id__in=ids,
                                                         raised_at__lte=as_of)
               .values("id", "allocation_id", "content_type_id", "object_id", "field")}
    messages = (QueryMessage.objects.filter(query_id__in=list(queries), at__lte=as_of)
                .order_by("at", "pk")
                .values("id", "query_id", "action", "text", "state_after", "author_id", "at"))
    for m in messages:
        q = queries[m["query_id"]]
        who, past = user(m["author_id"]), _PAST.get(m["action"], m["action"])
        on = f" on field '{q['field']}'" if q["field"] and m["action"] == "raise" else ""
        comment = f"Query {q['id']} {past}{on} by {who} at {utc_stamp(m['at'])}: {m['text']}"
        out[q["allocation_id"]][(q["content_type_id"], q["object_id"])].append(Note(
            "query", m["state_after"], f"query_{past}",
            Audit(who, site_of[q["allocation_id"]], m["at"], f"query {q['id']} {past}",
                  f"datamgmt.QueryMessage {m['id']}"),
            comment, field_id=q["field"] or None,
            side="Site" if m["action"] == "answer" else "Sponsor"))
    marks = (SdvMark.history.model.objects
             .filter(allocation_id__in=ids, history_date__lte=as_of)
             .order_by("history_date", "history_id")
             .values("id", "allocation_id", "content_type_id", "object_id", "verified",
                     "digest", "changed_by_id", "changed_at", "note", "history_id",
                     "history_date"))
    for r in marks:
        who, at = user(r["changed_by_id"]), r["changed_at"] or r["history_date"]
        if r["verified"]:
            comment = (f"Source data verified by {who} at {utc_stamp(at)}; SHA-256 of the "
                       f"record verified: {r['digest']}" + (f"; note: {r['note']}"
                                                           if r["note"] else ""))
            state, action, reason = "verified", "sdv", "source data verified"
        else:
            comment = (f"Source-data verification withdrawn by {who} at {utc_stamp(at)}: "
                       f"{r['note']}")
            state, action = "not_verified", "sdv_withdrawn"
            reason = f"verification withdrawn: {r['note']}"
        out[r["allocation_id"]][(r["content_type_id"], r["object_id"])].append(Note(
            "sdv", state, action,
            Audit(who, site_of[r["allocation_id"]], at, reason,
                  f"datamgmt.SdvMark {r['id']} history {r['history_id']}"),
            comment, side="Sponsor"))
    return out


def _lock_note(r: dict[str, Any], site: str, scope: str, user: _Users) -> Note:
    who, at = user(r["changed_by_id"]), r["changed_at"] or r["history_date"]
    state = "locked" if r["locked"] else "unlocked"
    return Note("lock", state, "lock" if r["locked"] else "unlock",
                Audit(who, site, at, f"{state}: {r['reason']}",
                      f"datamgmt.DataLock {r['id']} history {r['history_id']}"),
                f"{scope} {state} by {who} at {utc_stamp(at)}: {r['reason']}",
                side="Sponsor")


def _subject_notes(ids: list[int], site_of: dict[int, str], as_of: dt.datetime,
                   user: _Users) -> dict[int, list[Note]]:
    """allocation → its lock changes and every change of its protocol deviations."""
    out: dict[int, list[Note]] = defaultdict(list)
    locks = (DataLock.history.model.objects
             .filter(allocation_id__in=ids, changed_by__isnull=False, history_date__lte=as_of)
             .order_by("history_date", "history_id")
             .values("id", "allocation_id", "locked", "reason", "changed_by_id", "changed_at",
                     "history_id", "history_date"))
    for r in locks:
        out[r["allocation_id"]].append(_lock_note(r, site_of[r["allocation_id"]], "Patient",
                                                  user))
    deviations = (Deviation.history.model.objects
                  .filter(allocation_id__in=ids, history_date__lte=as_of)
                  .order_by("history_date", "history_id")
                  .values("id", "allocation_id", "code", "severity", "message", "detected_at",
                          "status", "acknowledged_by_id", "acknowledged_at", "comment",
                          "history_id", "history_date", "history_user_id",
                          "history_change_reason"))
    for r in deviations:
        who, reason = user(r["history_user_id"]), r["history_change_reason"] or ""
        comment = (f"Deviation {r['code']} ({r['severity']}) {r['status']}"
                   f"{': ' + reason if reason else ''} (by {who} at "
                   f"{utc_stamp(r['history_date'])}). {r['message']} Detected at "
                   f"{utc_stamp(r['detected_at'])}.")
        if r["acknowledged_at"] is not None:
            comment += (f" Acknowledged by {user(r['acknowledged_by_id'])} at "
                        f"{utc_stamp(r['acknowledged_at'])}"
                        + (f": {r['comment']}" if r["comment"] else "") + ".")
        out[r["allocation_id"]].append(Note(
            "deviation", r["status"], f"deviation_{r['status']}",
            Audit(who, site_of[r["allocation_id"]], r["history_date"], reason,
                  f"casebook.Deviation {r['id']} history {r['history_id']}"),
            comment, ref=r["code"]))
    return out


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
