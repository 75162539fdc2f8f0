"""Pre-screening use cases: take a FHIR message in, keep every value with its source,
re-assess the patients it touches, list the board, open a screening from a candidate.

The rules are the domain core's (:mod:`trialdesk.interop.fhir`,
:class:`~trialdesk.prescreen.detector.PrescreenMonitor`,
:func:`~trialdesk.prescreen.referral.screening_referral`); this module stores and
retrieves. A patient's state is rebuilt from the stored values in the order they were
received, so several web processes always agree and a restart loses nothing.

Site of a patient (docs/prescreen.md, "Live pre-screening"): the organization named by
the message's Encounter ``serviceProvider``, else by ``Patient.managingOrganization``
(``Organization/<site code>``, an identifier value equal to the site code, or the site's
name); else the site already recorded for the patient; else the request's ``site``
parameter; else the protocol's only site (RUMCESS: ``nrch``). An organization that is
not a trial site refuses the message.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from trialdesk.clinical.timeutil import format_local, utcnow
from trialdesk.errors import IngestError
from trialdesk.interop.events import ClinicalEvent, EventKind, PatientInfo
from trialdesk.interop.fhir import IngestResult, ingest_json
from trialdesk.prescreen.config import PrescreenConfig
from trialdesk.prescreen.detector import PrescreenMonitor
from trialdesk.prescreen.referral import screening_referral
from trialdesk.prescreen.results import PatientAssessment
from trialdesk.protocol import Protocol
from trialdesk.safety.durations import describe_duration
from trialdesk.web.accounts.permissions import check_site
from trialdesk.web.prescreen.models import (
    EventState,
    FhirMessage,
    IngestedEvent,
    MessageOutcome,
    PrescreenPatient,
    PrescreenStatus,
    ReceivedDemographics,
    Retraction,
    ScreeningReferral,
)
from trialdesk.web.screening.models import Screening, ScreeningStatus
from trialdesk.web.screening.services import create_screening
from trialdesk.web.sites.models import Site

INGEST = "prescreen.ingest"
#: report keys that make a message unusable as a whole (FHIR transaction: all or nothing)
_FATAL = ("invalid_json", "not_a_resource", "invalid_resource")


_CONFIGS: dict[int, tuple[Protocol, PrescreenConfig]] = {}


def prescreen_config(protocol: Protocol) -> PrescreenConfig:
    """The protocol's pre-screening rules (cached per loaded protocol object)."""
    cached = _CONFIGS.get(id(protocol))
    if cached is None or cached[0] is not protocol:
        cached = (protocol, PrescreenConfig.from_protocol(protocol))
        _CONFIGS[id(protocol)] = cached
    return cached[1]


# --- the outcome of one request --------------------------------------------------------------


@dataclass
class IngestOutcome:
    """What a request did: HTTP status and an OperationOutcome-like body."""

    status: int
    message: FhirMessage | None
    counts: dict[str, int] = field(default_factory=dict)
    patients: list[PrescreenPatient] = field(default_factory=list)

    def body(self, report: dict[str, Any], error: dict[str, Any] | None = None
             ) -> dict[str, Any]:
        issues = []
        if error is not None:
            issues.append({"severity": "error", "code": "invalid",
                           "diagnostics": error["message"]})
        for bucket, code in (("unknown_codes", "code-invalid"), ("unknown_units", "value"),
                             ("implausible", "value"), ("unusable", "incomplete")):
            for key, count in (report.get(bucket) or {}).items():
                examples = report.get("examples", {}).get(f"{bucket}:{key}", [])
                issues.append({"severity": "warning", "code": code,
                               "diagnostics": f"{bucket.replace('_', ' ')} {key}: {count}"
                               + (f" (e.g. {examples[0]})" if examples else "")})
        if not issues:
            issues.append({"severity": "information", "code": "informational",
                           "diagnostics": f"{self.counts.get('values_received', 0)} values "
                                          "received, none refused"})
        body: dict[str, Any] = {
            "resourceType": "OperationOutcome", "issue": issues,
            "message_id": self.message.pk if self.message else None,
            "received_at": self.message.received_at.isoformat() if self.message else None,
            "outcome": self.message.outcome if self.message else MessageOutcome.REJECTED,
            "counts": self.counts, "report": report,
            "patients": [patient_summary(p) for p in self.patients]}
        if error is not None:
            body["error"] = error
        return body


def patient_summary(p: PrescreenPatient) -> dict[str, Any]:
    return {"patient_id": p.patient_id, "site": p.site.code, "status": p.status,
            "onset_at": p.onset_utc.isoformat() if p.onset_utc else None,
            "deadline_at": p.deadline_utc.isoformat() if p.deadline_utc else None,
            "detectable_at": p.detectable_utc.isoformat() if p.detectable_utc else None}


# --- site mapping ----------------------------------------------------------------------------


def _site_by_organization(org: str) -> Site:
    site = (Site.objects.filter(active=True)
            .filter(Q(code__iexact=org) | Q(name__iexact=org)).first())
    if site is None:
        codes = ", ".join(Site.objects.filter(active=True).values_list("code", flat=True))
        raise IngestError(f"Organization '{org}' is not a trial site; use Organization/<site "
                          f"code> with one of: {codes}.", field="serviceProvider")
    return site


def _default_site(protocol: Protocol, site_code: str | None) -> Site | None:
    if site_code:
        site = Site.objects.filter(code=site_code, active=True).first()
        if site is None:
            raise IngestError(f"Unknown or closed site '{site_code}'.", field="site")
        return site
    if len(protocol.sites) == 1:
        return Site.objects.filter(code=protocol.sites[0].id, active=True).first()
    return None


def map_sites(result: IngestResult, protocol: Protocol, site_code: str | None
              ) -> dict[str, Site]:
    """The site of every patient the message names (see the module docstring)."""
    pids = {e.patient_id for e in result.events} | set(result.patients)
    named: dict[str, str] = {}
    for pid, info in result.patients.items():
        if info.organization:
            named[pid] = info.organization
    for enc in result.encounters:  # an Encounter's service provider wins
        if enc.get("patient_id") and enc.get("service_provider"):
            named[enc["patient_id"]] = enc["service_provider"]
            pids.add(enc["patient_id"])
    known = dict(PrescreenPatient.objects.filter(patient_id__in=pids)
                 .values_list("patient_id", "site_id"))
    sites_by_pk = {s.pk: s for s in Site.objects.filter(pk__in=set(known.values()))}
    default = None
    out: dict[str, Site] = {}
    for pid in sorted(pids):
        if pid in named:
            out[pid] = _site_by_organization(named[pid])
        elif pid in known:
            out[pid] = sites_by_pk[known[pid]]
        else:
            default = default or _default_site(protocol, site_code)
            if default is None:
                raise IngestError(
                    f"Patient/{pid}: no site. Send an Encounter with serviceProvider "
                    "Organization/<site code> (or Patient.managingOrganization), or the "
                    "'site' parameter.", field="site")
            out[pid] = default
    return out


# --- rebuilding a patient's state -------------------------------------------------------------


def _event(row: IngestedEvent, pid: str) -> ClinicalEvent:
    return ClinicalEvent(pid, row.at_utc, EventKind(row.kind), row.value, row.unit, row.source,
                         row.recorded_utc, row.drug or None, row.end_utc, row.version)


def _info(row: ReceivedDemographics, pid: str) -> PatientInfo:
    return PatientInfo(pid, row.source, birth_date=row.birth_date, sex=row.sex or None,
                       organization=row.organization or None)


def _base(source: str) -> str:
    return source.split("#", 1)[0]


def rebuild(patient: PrescreenPatient, config: PrescreenConfig,
            new_events: list[IngestedEvent] = (), new_infos: list[ReceivedDemographics] = ()
            ) -> tuple[PrescreenMonitor, dict[int, str], PatientInfo | None]:
    """Replay the patient's stored values in the order received (plus unsaved new ones).

    Returns the monitor, the state of every event (by position: ``id`` for stored rows,
    ``-1 - i`` for the i-th new one) and the latest demographics.
    """
    pid = patient.patient_id
    rows = list(patient.events.order_by("id")) if patient.pk else []
    infos = list(patient.demographics.order_by("id")) if patient.pk else []
    sources = {_base(r.source) for r in [*rows, *new_events]}
    retractions = list(Retraction.objects.filter(source__in=sources).order_by("id"))
    big = 10**15
    timeline: list[tuple[tuple[int, int, int], str, Any, int]] = []
    for r in infos:
        timeline.append(((r.message_id, 0, r.pk), "info", r, r.pk))
    for i, r in enumerate(new_infos):
        timeline.append(((r.message_id, 0, big + i), "info", r, -1 - i))
    for r in rows:
        timeline.append(((r.message_id, 1, r.pk), "event", r, r.pk))
    for i, r in enumerate(new_events):
        timeline.append(((r.message_id, 1, big + i), "event", r, -1 - i))
    for r in retractions:
        timeline.append(((r.message_id, 2, r.pk), "retraction", r, r.pk))
    timeline.sort(key=lambda t: t[0])
    monitor = PrescreenMonitor(config)
    states: dict[int, str] = {}
    active: dict[tuple[str, str, str], int] = {}
    info: PatientInfo | None = None
    for _, what, row, ref in timeline:
        if what == "info":
            info = _info(row, pid)
            monitor.feed(patients=[info])
        elif what == "event":
            event = _event(row, pid)
            out = monitor.feed([event])
            if out.added:
                states[ref] = EventState.ACTIVE
                active[event.key] = ref
            elif out.replaced:
                states[active[event.key]] = EventState.SUPERSEDED
                states[ref] = EventState.ACTIVE
                active[event.key] = ref
            elif out.duplicates:
                states[ref] = EventState.DUPLICATE
            else:
                states[ref] = EventState.STALE
        else:
            monitor.feed(retracted=[row.source])
            for key in [k for k in active if _base(k[1]) == row.source]:
                states[active.pop(key)] = EventState.RETRACTED
    return monitor, states, info


def _apply_assessment(patient: PrescreenPatient, a: PatientAssessment, user: Any,
                      now: dt.datetime, reason: str) -> None:
    values = {"status": a.status.value, "onset_utc": a.onset_utc,
              "deadline_utc": a.deadline_utc, "detectable_utc": a.detectable_utc,
              "reasons": [c.to_dict() for c in a.checks]}
    changed = patient.pk is None or any(getattr(patient, k) != v for k, v in values.items())
    patient.assessed_at = now
    if not changed:
        PrescreenPatient.objects.filter(pk=patient.pk).update(assessed_at=now)
        return
    for k, v in values.items():
        setattr(patient, k, v)
    patient._history_user = user
    patient._change_reason = f"{reason}: {a.status.value}"
    patient.save()


# --- ingest ----------------------------------------------------------------------------------


def _reject(body: bytes, user: Any, result: IngestResult, now: dt.datetime,
            error: IngestError) -> tuple[IngestOutcome, dict[str, Any]]:
    message = FhirMessage(received_at=now, received_by=user,
                          content=body.decode("utf-8", errors="replace"),
                          outcome=MessageOutcome.REJECTED, error=error.message,
                          report=result.report.to_dict())
    message._history_user = user
    message._change_reason = "FHIR message rejected"
    message.save()
    outcome = IngestOutcome(422, message, {"values_received": 0})
    return outcome, outcome.body(result.report.to_dict(), error.to_dict())


def ingest_message(body: bytes, user: Any, protocol: Protocol, *,
                   site_code: str | None = None, now: dt.datetime | None = None
                   ) -> tuple[IngestOutcome, dict[str, Any]]:
    """Take one FHIR R4 resource or Bundle (JSON bytes) in and re-assess its patients.

    A body that is not JSON, not a resource, or holds a resource that does not validate
    against FHIR R4 is refused as a whole (422, ``INGEST_INVALID``; the message is kept
    as ``rejected`` and nothing in it is used). Values with unknown codes or units or
    implausible values are counted in the report and not used; the rest is used.
    Raises PermissionDenied (nothing stored) when the user may not ingest at a site.
    """
    now = now or utcnow()
    config = prescreen_config(protocol)
    result = ingest_json(body)
    fatal = [k for k in result.report.unusable if k.startswith(_FATAL)]
    if fatal:
        examples = [m for k in fatal for m in result.report.examples.get(f"unusable:{k}", [])]
        detail = f": {examples[0]}" if examples else ""
        return _reject(body, user, result, now, IngestError(
            f"The message is not valid FHIR R4 ({', '.join(fatal)}){detail}. Nothing in it "
            "was used; correct it and send it again.", field="body"))
    try:
        sites = map_sites(result, protocol, site_code)
    except IngestError as exc:
        return _reject(body, user, result, now, exc)
    for site in set(sites.values()):
        check_site(user, INGEST, site)
    for attempt in range(1, _STORE_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _store(body, user, result, sites, config, now)
        except IntegrityError:
            # Two first messages for the same new patient at the same moment: the other
            # one created the patient; run again and find it (nothing was stored).
            if attempt == _STORE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


#: a message races at most with the other first messages of its new patients
_STORE_ATTEMPTS = 3


def _store(body: bytes, user: Any, result: IngestResult, sites: dict[str, Site],
           config: PrescreenConfig, now: dt.datetime) -> tuple[IngestOutcome, dict[str, Any]]:
    message = FhirMessage(received_at=now, received_by=user,
                          content=body.decode("utf-8", errors="replace"),
                          outcome=MessageOutcome.ACCEPTED, report=result.report.to_dict())
    message._history_user = user
    message._change_reason = "FHIR message received"
    message.save()
    patients = {p.patient_id: p for p in PrescreenPatient.objects.select_for_update()
                .select_related("site").filter(patient_id__in=sites)}
    for pid, site in sites.items():
        patient = patients.get(pid)
        if patient is None:
            patient = PrescreenPatient(patient_id=pid, site=site)
            patient._history_user = user
            patient._change_reason = f"first message for the patient (FHIR message {message.pk})"
            patient.save()
            patients[pid] = patient
        elif patient.site_id != site.pk:
            old = patient.site.code
            patient.site = site
            patient._history_user = user
            patient._change_reason = f"transferred from site {old} (Encounter serviceProvider)"
            patient.save()
    new_events: dict[str, list[IngestedEvent]] = {}
    for e in result.events:
        rtype, _, rest = e.source.partition("/")
        new_events.setdefault(e.patient_id, []).append(IngestedEvent(
            message=message, patient=patients[e.patient_id], resource_type=rtype,
            resource_id=rest.split("#", 1)[0], version=e.version, source=e.source,
            kind=e.kind.value, drug=e.drug or "", value=e.value, unit=e.unit,
            at_utc=e.at_utc, recorded_utc=e.recorded_utc, end_utc=e.end_utc,
            received_at=now))
    new_infos: dict[str, list[ReceivedDemographics]] = {}
    for pid, info in result.patients.items():
        new_infos.setdefault(pid, []).append(ReceivedDemographics(
            message=message, patient=patients[pid], source=info.source,
            birth_date=info.birth_date, sex=info.sex or "",
            organization=info.organization or "", received_at=now))
    for source in dict.fromkeys(result.retracted):
        retraction = Retraction(message=message, source=source, received_at=now)
        retraction._history_user = user
        retraction.save()
    affected = dict(patients)
    if result.retracted:
        hit = Q()
        for source in result.retracted:
            hit |= Q(source=source) | Q(source__startswith=source + "#")
        for p in PrescreenPatient.objects.select_for_update().filter(
                pk__in=IngestedEvent.objects.filter(hit).values("patient")):
            affected.setdefault(p.patient_id, p)
    counts: Counter[str] = Counter()
    for pid, patient in sorted(affected.items()):
        monitor, states, _ = rebuild(patient, config, new_events.get(pid, []),
                                     new_infos.get(pid, []))
        for row in new_infos.get(pid, []):
            row._history_user = user
            row.save()
        for i, row in enumerate(new_events.get(pid, [])):
            row.state = states[-1 - i]
            counts[row.state] += 1
            row._history_user = user
            row._change_reason = f"received in FHIR message {message.pk}"
            row.save()
        stored = {r.pk: r for r in patient.events.exclude(pk__in=[r.pk for r in
                                                                  new_events.get(pid, [])])}
        for pk, state in states.items():
            if pk > 0 and pk in stored and stored[pk].state != state:
                row = stored[pk]
                row.state = state
                row._history_user = user
                row._change_reason = f"{state} by FHIR message {message.pk}"
                row.save()
                counts[f"previous_{state}"] += 1
        _apply_assessment(patient, monitor.assess(pid, now), user, now,
                          f"re-assessed after FHIR message {message.pk}")
    message.counts = {
        "resources": sum(result.report.resources.values()),
        "values_received": len(result.events), "values_added": counts[EventState.ACTIVE],
        "duplicates": counts[EventState.DUPLICATE], "stale": counts[EventState.STALE],
        "replaced": counts[f"previous_{EventState.SUPERSEDED}"],
        "retracted": counts[f"previous_{EventState.RETRACTED}"],
        "patients": len(sites), "problems": result.report.problems}
    FhirMessage.objects.filter(pk=message.pk).update(counts=message.counts)
    outcome = IngestOutcome(200, message, message.counts,
                            sorted(affected.values(), key=lambda p: p.patient_id))
    return outcome, outcome.body(result.report.to_dict())


# --- the board -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardRow:
    patient: PrescreenPatient
    onset_local: str
    deadline_local: str
    time_left: str
    seconds_left: float | None
    urgency: str
    checks: list[dict[str, Any]]
    screening: Screening | None


def _urgency(left: dt.timedelta | None) -> str:
    if left is None:
        return "none"
    hours = left / dt.timedelta(hours=1)
    return "closed" if hours < 0 else "urgent" if hours <= 1 else "soon" if hours <= 2 else "ok"


BOARD_CLOSED_HOURS = 24


def board(sites: Any, now: dt.datetime | None = None) -> dict[str, list[BoardRow]]:
    """Candidates and possibles at ``sites``: in the window (soonest deadline first), onset
    not determined yet, and window closed in the last 24 h (most recent first)."""
    now = now or utcnow()
    live = (PrescreenPatient.objects.select_related("site")
            .filter(site__in=sites, status__in=[PrescreenStatus.CANDIDATE,
                                                PrescreenStatus.POSSIBLE]))
    referrals = {r.patient_id: r.screening for r in ScreeningReferral.objects
                 .select_related("screening").filter(patient__in=live)
                 .exclude(screening__status=ScreeningStatus.ENTERED_IN_ERROR)}

    def row(p: PrescreenPatient) -> BoardRow:
        zone = p.site.timezone
        left = p.deadline_utc - now if p.deadline_utc else None
        shown = ("" if left is None else "closed" if left < dt.timedelta(0)
                 else describe_duration(left.total_seconds()))
        return BoardRow(p, format_local(p.onset_utc, zone) if p.onset_utc else "",
                        format_local(p.deadline_utc, zone) if p.deadline_utc else "", shown,
                        left.total_seconds() if left is not None else None, _urgency(left),
                        p.reasons, referrals.get(p.pk))

    return {
        "window": [row(p) for p in live.filter(deadline_utc__gte=now)
                   .order_by("deadline_utc", "patient_id")],
        "no_onset": [row(p) for p in live.filter(deadline_utc=None)
                     .order_by("-updated_at")],
        "closed": [row(p) for p in live.filter(
            deadline_utc__lt=now, deadline_utc__gte=now - dt.timedelta(
                hours=BOARD_CLOSED_HOURS)).order_by("-deadline_utc")],
    }


# --- opening a screening ---------------------------------------------------------------------


def _received(patient: PrescreenPatient, source: str) -> dict[str, Any]:
    """When (and in which message) the value from ``source`` in use was received."""
    if source.startswith("Patient/"):
        row = patient.demographics.filter(source=source).order_by("-id").first()
    else:
        row = (patient.events.filter(source=source, state=EventState.ACTIVE)
               .order_by("-id").first())
    if row is None:
        return {"received_at": None, "message_id": None}
    return {"received_at": row.received_at.isoformat(), "message_id": row.message_id}


@transaction.atomic
def open_screening(patient: PrescreenPatient, user: Any, protocol: Protocol,
                   now: dt.datetime | None = None) -> ScreeningReferral:
    """Open a screening pre-filled with the data the detector used (once per patient:
    an open screening already opened from the board is returned instead)."""
    existing = (ScreeningReferral.objects.select_related("screening")
                .filter(patient=patient).exclude(
                    screening__status=ScreeningStatus.ENTERED_IN_ERROR).first())
    if existing is not None:
        return existing
    now = now or utcnow()
    config = prescreen_config(protocol)
    monitor, _, info = rebuild(patient, config)
    assessment = monitor.assess(patient.patient_id, now)
    referral = screening_referral(assessment, info, protocol, patient.site.timezone)
    view = create_screening(protocol, patient.site, user, referral.record)
    provenance = {p.field: {**p.to_dict(), **_received(patient, p.source)}
                  for p in referral.provenance}
    provenance["_patient"] = {"patient_id": patient.patient_id,
                              "status": assessment.status.value,
                              "assessed_at": now.isoformat()}
    row = ScreeningReferral(screening=view.screening, patient=patient, provenance=provenance,
                            status_at_referral=assessment.status.value, created_by=user)
    row._history_user = user
    row._change_reason = f"screening opened from the candidate board ({assessment.status})"
    row.save()
    return row

