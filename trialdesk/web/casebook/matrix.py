"""The subject matrix: where every patient's casebook stands, on one page, fast.

One row per randomized patient: study day today, vital status, forms done / due so far,
overdue forms, open and answered queries, source-data verification, signatures, the
patient lock, unacknowledged deviations and the latest SOFA total.

Every rule is the domain core's: the schedule status of each (form, day) comes from
:func:`trialdesk.crf.schedule.subject_schedule` (the function the casebook page uses),
the vital status from :func:`trialdesk.crf.vital_status.vital_status` (the one the
analysis export's date of death uses), digests from
:mod:`trialdesk.datamanagement.signatures`. This module only reads the database — **in
bulk**: a constant number of queries per page whatever the number of patients
(OpenClinica's subject matrix became slow at scale by reading per patient; anchors §7.6).

Reading in two passes
---------------------
1. *Every patient the filters keep* (the sort is by overdue forms, which needs each
   patient's schedule): one query for the allocations, one for the (form, day) keys of
   their saved forms, one for the data of their outcome forms (vital status, end of
   study), one aggregate of queries by state and one of deviations by status.
2. *The page's patients only* (50): SDV marks, signatures, locks, the latest SOFA
   total (read from the stored SOFA as one number, not the whole form), and the content
   of just those forms whose digest must be compared (verified or signed forms, every
   form of a signed casebook) — plus, only when a casebook signature is on the page, the
   adverse events a casebook digest covers.

Sorted by subject or randomization time without the "needs attention" filter, the
database sorts and pages, and pass 1 reads the page's patients only.

Definitions
-----------
* **done / due so far**: forms saved / (saved + due now + overdue) among the scheduled
  forms (upcoming and not-required slots are not counted).
* **open queries**: open or reopened (the site has to answer); **answered**: awaiting
  the data manager's or monitor's close.
* **SDV**: saved forms whose verification mark is set *and* still matches the form
  (a form changed since verification does not count) / saved forms.
* **signed**: ``yes`` — a casebook signature that still matches the casebook, or every
  saved form carrying a valid signature; ``partial`` — some forms validly signed, or a
  casebook signature the casebook has changed since; ``no`` otherwise.
* **locked**: the patient's own lock (the trial-wide lock is shown once, above the table).
* **needs attention**: overdue forms, open queries or unacknowledged (open) deviations.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db.models import Count, Q, QuerySet

from trialdesk.clinical.timeutil import format_local, site_zone, utcnow
from trialdesk.crf.schedule import SlotStatus, SubjectSchedule, subject_schedule
from trialdesk.crf.vital_status import OUTCOME_FORMS, VitalStatus, death_date, vital_status
from trialdesk.datamanagement.queries import QueryState
from trialdesk.datamanagement.signatures import record_digest, signature_valid
from trialdesk.protocol import Protocol
from trialdesk.web.casebook.models import Deviation, DeviationStatus, FormRecord
from trialdesk.web.datamgmt.locks import TRIAL_SCOPE
from trialdesk.web.datamgmt.models import DataLock, Query, SdvMark, Signature, SignatureScope
from trialdesk.web.datamgmt.targets import casebook_digest_of, content_of, content_type_of
from trialdesk.web.randomization.models import Allocation

#: patients per page
PAGE_SIZE = 50
#: sort orders offered on the page (the first is the default: most overdue forms first)
SORTS = ("overdue", "subject", "randomized")
AWAITING_SITE = (QueryState.OPEN.value, QueryState.REOPENED.value)


class _Form(NamedTuple):
    """A saved form as the schedule and the vital status read it (no full record)."""

    form_id: str
    day: int | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Summary:
    """Pass 1 for one patient: what the filters and the sort need."""

    allocation: Allocation
    schedule: SubjectSchedule
    vital: VitalStatus
    open_queries: int
    answered_queries: int
    open_deviations: int
    acknowledged_deviations: int
    saved_forms: int  # every form in use, scheduled or not

    @property
    def overdue(self) -> int:
        return self.schedule.count(SlotStatus.OVERDUE)

    @property
    def done(self) -> int:
        return self.schedule.count(SlotStatus.DONE)

    @property
    def due_now(self) -> int:
        return self.schedule.count(SlotStatus.DUE)

    @property
    def due_so_far(self) -> int:
        """Saved + due now + overdue: the forms that should exist or be in progress."""
        return self.done + self.due_now + self.overdue

    @property
    def needs_attention(self) -> bool:
        return self.overdue > 0 or self.open_queries > 0 or self.open_deviations > 0


@dataclass(frozen=True)
class MatrixRow:
    """One patient's row: the summary plus what is read for the page only."""

    summary: Summary
    arm_label: str
    randomized_local: str
    saved_forms: int
    sdv_verified: int
    signed: str  # "yes" | "partial" | "no"
    signed_note: str
    locked: bool
    sofa_total: int | None
    sofa_day: int | None
    forms_signed: int = 0  # saved forms covered by a valid signature (form or casebook)

    @property
    def allocation(self) -> Allocation:
        return self.summary.allocation

    @property
    def awaiting_signature(self) -> int:
        """Saved forms no valid signature covers (unsigned, or changed since signing)."""
        return max(0, self.saved_forms - self.forms_signed)

    @property
    def awaiting_sdv(self) -> int:
        """Saved forms not verified, or changed since verification."""
        return max(0, self.saved_forms - self.sdv_verified)


@dataclass(frozen=True)
class MatrixPage:
    rows: list[MatrixRow]
    total: int  # patients the filters keep
    page: int
    pages: int
    trial_locked: bool

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.page * PAGE_SIZE, self.total)


# --- pass 1: every patient the filters keep ---------------------------------------------


def summaries(protocol: Protocol, allocations: QuerySet[Allocation], *,
              now: dt.datetime | None = None) -> list[Summary]:
    """Schedule, vital status, query and deviation counts of every patient (5 queries)."""
    now = now or utcnow()
    patients = list(allocations.select_related("site").only(
        "pk", "subject_id", "arm", "randomized_at", "site__code", "site__name",
        "site__timezone"))
    ids = allocations.values("pk")
    forms: dict[int, list[_Form]] = defaultdict(list)
    for allocation_id, form_id, day in (FormRecord.objects.active()
                                        .filter(allocation__in=ids)
                                        .exclude(form_id__in=OUTCOME_FORMS)
                                        .values_list("allocation_id", "form_id", "day")):
        forms[allocation_id].append(_Form(form_id, day, {}))
    for allocation_id, form_id, day, data in (FormRecord.objects.active()
                                              .filter(allocation__in=ids,
                                                      form_id__in=OUTCOME_FORMS)
                                              .values_list("allocation_id", "form_id", "day",
                                                           "data")):
        forms[allocation_id].append(_Form(form_id, day, data or {}))
    queries = {row["allocation_id"]: row for row in (
        Query.objects.filter(allocation__in=ids).values("allocation_id").annotate(
            open=Count("pk", filter=Q(state__in=AWAITING_SITE)),
            answered=Count("pk", filter=Q(state=QueryState.ANSWERED.value))))}
    deviations = {row["allocation_id"]: row for row in (
        Deviation.objects.filter(allocation__in=ids).values("allocation_id").annotate(
            open=Count("pk", filter=Q(status=DeviationStatus.OPEN)),
            acknowledged=Count("pk", filter=Q(status=DeviationStatus.ACKNOWLEDGED))))}
    today_in: dict[str, dt.date] = {}
    out = []
    for a in patients:
        zone = a.site.timezone
        if zone not in today_in:
            today_in[zone] = now.astimezone(site_zone(zone)).date()
        saved = forms.get(a.pk, [])
        schedule = _schedule(protocol, a.pk, a.randomized_at, zone, a.arm, today_in[zone],
                             death_date(saved), frozenset((f.form_id, f.day) for f in saved))
        q, d = queries.get(a.pk, {}), deviations.get(a.pk, {})
        out.append(Summary(a, schedule, vital_status(saved, schedule.day0_date),
                           q.get("open", 0), q.get("answered", 0), d.get("open", 0),
                           d.get("acknowledged", 0), len(saved)))
    return out


#: schedules kept between page views (a few MB at most): see :func:`_schedule`
SCHEDULE_CACHE_SIZE = 20_000
_schedules: dict[tuple[Any, ...], SubjectSchedule] = {}


def _schedule(protocol: Protocol, allocation_pk: int, randomized_at: dt.datetime,
              zone: str, arm: str, today: dt.date, died: dt.date | None,
              done: frozenset[tuple[str, int | None]]) -> SubjectSchedule:
    """The core's :func:`subject_schedule`, remembered by *all* its inputs.

    The schedule is a pure function of the protocol, the randomization time, the zone,
    the arm, today's date, the date of death and the saved (form, day) pairs, so a
    patient whose forms have not changed since the last view (same day) reuses the
    result; any new or retired form, or a new day, is a new key. The patient's id is
    part of the key only so that one entry never serves two patients. Full: emptied.
    """
    key = (protocol.content_sha256, allocation_pk, randomized_at, zone, arm, today, died,
           done)
    found = _schedules.get(key)
    if found is None:
        found = subject_schedule(protocol, randomized_at=randomized_at, timezone=zone,
                                 arm=arm, today=today, death_date=died, done=done)
        if len(_schedules) >= SCHEDULE_CACHE_SIZE:
            _schedules.clear()
        _schedules[key] = found
    return found


def clear_schedule_cache() -> None:
    """Forget the remembered schedules (benchmarks measure a cold page with it)."""
    _schedules.clear()


_SORT_KEYS: dict[str, Callable[[Summary], Any]] = {
    "overdue": lambda s: (-s.overdue, -s.open_queries, s.allocation.subject_id),
    "subject": lambda s: s.allocation.subject_id,
    "randomized": lambda s: (-s.allocation.randomized_at.timestamp(),
                             s.allocation.subject_id),
}


# --- pass 2: the page's patients --------------------------------------------------------


def subject_matrix(protocol: Protocol, allocations: QuerySet[Allocation], *,
                   needs_attention: bool = False, sort: str = "overdue", page: int = 1,
                   now: dt.datetime | None = None) -> MatrixPage:
    """The matrix page ``page`` (50 patients) of ``allocations`` (already site-scoped
    and filtered by the caller), optionally only patients needing attention."""
    key = _SORT_KEYS.get(sort, _SORT_KEYS["overdue"])
    if sort in _DB_ORDER and not needs_attention:  # the database sorts and pages
        total = allocations.count()
        pages, page = _pages(total, page)
        on_page = list(allocations.order_by(*_DB_ORDER[sort]).values_list("pk", flat=True)
                       [(page - 1) * PAGE_SIZE:page * PAGE_SIZE])
        shown = sorted(summaries(protocol, Allocation.objects.filter(pk__in=on_page), now=now),
                       key=key)
    else:
        rows = summaries(protocol, allocations, now=now)
        if needs_attention:
            rows = [s for s in rows if s.needs_attention]
        rows.sort(key=key)
        total = len(rows)
        pages, page = _pages(total, page)
        shown = rows[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    details = _page_details(shown)
    arms = {arm.id: arm.label for arm in protocol.arms}
    return MatrixPage([_row(s, details, arms) for s in shown], total, page, pages,
                      details.trial_locked)


def matrix_rows(protocol: Protocol, shown: list[Summary]) -> list[MatrixRow]:
    """The full rows (SDV, signatures, locks, latest SOFA) of ``shown``, read in bulk as
    for one page of the matrix — the home page's worklist reads them for every patient
    at the user's sites (signatures and SDV still owed), in a constant number of queries.
    """
    details = _page_details(shown)
    arms = {arm.id: arm.label for arm in protocol.arms}
    return [_row(s, details, arms) for s in shown]


#: sort orders the database can do itself (same order as _SORT_KEYS)
_DB_ORDER = {"subject": ("subject_id",), "randomized": ("-randomized_at", "subject_id")}


def _pages(total: int, page: int) -> tuple[int, int]:
    """Number of pages and the page asked for, kept within them."""
    pages = max(1, -(-total // PAGE_SIZE))
    return pages, min(max(1, page), pages)


@dataclass
class _Details:
    records: dict[int, list[FormRecord]]  # only those a digest is needed for
    sdv: dict[int, SdvMark]  # by form record pk
    signatures: dict[int, list[Signature]]  # by allocation pk
    locked: set[int]
    trial_locked: bool
    casebook_digests: dict[int, str]
    latest_sofa: dict[int, tuple[int, Any]]  # allocation pk → (day, total)


def _page_details(shown: list[Summary]) -> _Details:
    """SDV marks, signatures, locks and the latest SOFA of the page's patients; the
    content of the forms only where a digest must be compared (a verified or signed form,
    a signed casebook), so a page without signatures decodes no form data at all."""
    ids = [s.allocation.pk for s in shown]
    form_type = content_type_of(FormRecord())
    sdv = {m.object_id: m for m in SdvMark.objects.filter(
        allocation_id__in=ids, content_type=form_type, verified=True).only(
        "object_id", "digest", "verified")}
    signatures: dict[int, list[Signature]] = defaultdict(list)
    for sig in Signature.objects.filter(allocation_id__in=ids).only(
            "allocation_id", "content_type_id", "object_id", "scope", "digest"):
        signatures[sig.allocation_id].append(sig)
    casebook_signed = [pk for pk, sigs in signatures.items()
                       if any(s.scope == SignatureScope.CASEBOOK for s in sigs)]
    signed_forms = [s.object_id for sigs in signatures.values() for s in sigs
                    if s.scope == SignatureScope.RECORD and s.content_type_id == form_type.pk]
    records: dict[int, list[FormRecord]] = defaultdict(list)
    wanted = Q(pk__in=[*sdv, *signed_forms]) | Q(allocation_id__in=casebook_signed)
    for r in (FormRecord.objects.active().filter(allocation_id__in=ids).filter(wanted)
              .defer("derived", "entered_by", "created_at", "updated_at").order_by("pk")):
        records[r.allocation_id].append(r)
    latest_sofa: dict[int, tuple[int, Any]] = {}
    for allocation_id, day, total in (FormRecord.objects.active()
                                      .filter(allocation_id__in=ids, form_id="sofa",
                                              day__isnull=False, derived__has_key="sofa")
                                      .order_by("allocation_id", "-day")
                                      .values_list("allocation_id", "day",
                                                   "derived__sofa__total")):
        latest_sofa.setdefault(allocation_id, (day, total))
    locks = DataLock.objects.filter(Q(allocation_id__in=ids) | Q(scope_key=TRIAL_SCOPE),
                                    locked=True).values_list("scope_key", "allocation_id")
    locked, trial_locked = set(), False
    for key, allocation_id in locks:
        if key == TRIAL_SCOPE:
            trial_locked = True
        else:
            locked.add(allocation_id)
    digests = _casebook_digests(casebook_signed, records)
    return _Details(records, sdv, signatures, locked, trial_locked, digests, latest_sofa)


def _casebook_digests(signed: list[int],
                      records: dict[int, list[FormRecord]]) -> dict[int, str]:
    """Current casebook digests of the patients with a casebook signature (one query for
    their adverse events, none when the page has no casebook signature)."""
    if not signed:
        return {}
    from trialdesk.web.safety.models import AdverseEvent

    events: dict[int, list[Any]] = defaultdict(list)
    rows = (AdverseEvent.objects.active().filter(allocation_id__in=signed)
            .select_related("allocation").order_by("pk"))
    for ae in rows:
        events[ae.allocation_id].append(ae)
    return {pk: casebook_digest_of(events[pk] + records[pk]) for pk in signed}


def _signed(sigs: Iterable[Signature], records: list[FormRecord], saved: int,
            digests: dict[int, str], allocation_id: int) -> tuple[str, str, int]:
    """(signed, note, saved forms a valid signature covers)."""
    sigs = list(sigs)
    casebook = [s for s in sigs if s.scope == SignatureScope.CASEBOOK]
    if any(signature_valid(s.digest, digests.get(allocation_id, "")) for s in casebook):
        return "yes", "casebook signed", saved
    by_record: dict[int, list[Signature]] = defaultdict(list)
    for s in sigs:
        if s.scope == SignatureScope.RECORD:
            by_record[s.object_id].append(s)
    valid = sum(1 for r in records if r.pk in by_record and any(
        signature_valid(s.digest, record_digest(content_of(r))) for s in by_record[r.pk]))
    if saved and valid == saved:
        return "yes", f"all {valid} forms signed", valid
    if valid:
        return "partial", f"{valid} of {saved} forms signed", valid
    if casebook:
        return "partial", "casebook signed, changed since", 0
    return "no", "", 0


def _row(s: Summary, d: _Details, arms: dict[str, str]) -> MatrixRow:
    a = s.allocation
    records = d.records.get(a.pk, [])
    verified = sum(1 for r in records if r.pk in d.sdv
                   and d.sdv[r.pk].digest == record_digest(content_of(r)))
    signed, note, forms_signed = _signed(d.signatures.get(a.pk, ()), records,
                                         s.saved_forms, d.casebook_digests, a.pk)
    sofa_day, sofa_total = d.latest_sofa.get(a.pk, (None, None))
    return MatrixRow(s, arms.get(a.arm, a.arm), format_local(a.randomized_at, a.site.timezone),
                     s.saved_forms, verified, signed, note, a.pk in d.locked, sofa_total,
                     sofa_day, forms_signed)
