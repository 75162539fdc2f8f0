"""The complete trial record as CDISC ODM 1.3.2 XML, written as a stream.

21 CFR 11.10(b) asks for "accurate and complete copies of records in both human readable
and electronic form suitable for inspection". This module turns the trial's records —
study metadata from the protocol and the CRF form library, and per subject every version
of every form with who changed what, when, where and why, plus the electronic
signatures — into an ODM 1.3.2 document (``docs/export.md``).

Pure domain code (no Django): the web layer reads its database into the small
dataclasses below (:class:`SubjectRecord` → :class:`FormInstance` →
:class:`RecordVersion`) and hands them over one subject at a time; :class:`OdmWriter`
yields the XML in chunks (one subject per chunk), so memory stays flat whatever the
size of the trial.

Choices (each documented in ``docs/export.md``):

* ``FileType="Transactional"``, ``Archival="Yes"``, ``Granularity="All"``: a file that
  carries the audit trail is a transactional file in ODM's terms (a Snapshot carries
  current values only, without history).
* One ``FormData`` per stored version of a record, in time order: the first is
  ``Insert``, later ones ``Update`` and carry only the items that changed
  (``Insert`` = first value, ``Update`` = changed value, ``Remove`` = value cleared),
  each item with its ``AuditRecord``; marking a record entered in error is a
  ``FormData TransactionType="Remove"`` with its reason (the data stay in the file).
  Signatures are ``Context`` entries carrying a ``Signature`` in time order, the SHA-256
  of the signed content in an ``Annotation``.
* ``FormRepeatKey`` is the record's number, so a form entered in error and its
  re-entry for the same day are two instances.
* Values are written as entered: numbers in the unit of the field (``MeasurementUnitRef``
  on every value with a unit; a value entered in an alternative unit, e.g. lactate in
  mg/dL, names that unit), date-times with the UTC offset they were entered with. Audit
  and signature time stamps are UTC (``...Z``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from trialdesk.crf.forms import FORMS, FieldKind, FormDefinition, FormField
from trialdesk.datamanagement.signatures import STATEMENTS, SignatureMeaning
from trialdesk.interop.record_forms import (
    FLAG_TYPE_CODELIST,
    FLAG_TYPES,
    FLAG_VALUES,
    RANDOMIZATION_EVENT_OID,
    SCREENING_EVENT_OID,
    allocation_exportable,
    allocation_statement,
    flag_codelist,
    randomization_form,
    screening_form,
)
from trialdesk.protocol.schema import Protocol

ODM_NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"
ODM_VERSION = "1.3.2"
SOURCE_SYSTEM = "TrialDesk"
#: the AuditRecord user of changes made by the system itself (no signed-in user)
SYSTEM_USER = "system"

INSERT, UPDATE, REMOVE, CONTEXT = "Insert", "Update", "Remove", "Context"

_DATA_TYPES = {FieldKind.NUMBER: "float", FieldKind.INTEGER: "integer",
               FieldKind.CHOICE: "text", FieldKind.DATETIME: "datetime",
               FieldKind.DATE: "date", FieldKind.BOOLEAN: "boolean", FieldKind.TEXT: "text"}

_N, _INT, _C, _T, _B, _X = (FieldKind.NUMBER, FieldKind.INTEGER, FieldKind.CHOICE,
                            FieldKind.DATETIME, FieldKind.BOOLEAN, FieldKind.TEXT)

#: The adverse-event record (web app ``safety.AdverseEvent``) as a form of the export:
#: one instance per event, in the repeating study event ``SE.AE``.
ADVERSE_EVENT = FormDefinition("adverse_event", "Adverse event", (
    FormField("term", "Event term", _X),
    FormField("description", "Description", _X),
    FormField("onset_at", "Onset", _T),
    FormField("awareness_at", "Site's first knowledge", _T),
    FormField("seriousness", "Seriousness criteria", _X,
              help="Criteria met, separated by ';' (empty: not serious)"),
    FormField("severity_grade", "CTCAE grade", _INT, "grade"),
    FormField("causality", "Causality (WHO-UMC)", _X),
    FormField("expectedness", "Expectedness", _X),
    FormField("outcome", "Outcome", _X),
    FormField("exempt_event_id", "Protocol-exempt event", _X),
    FormField("reported_to_sponsor_at", "Reported to the sponsor", _T),
    FormField("reported_to_regulator_at", "Reported to the regulator", _T),
    FormField("serious", "Serious", _B),
    FormField("susar", "SUSAR", _B),
))
AE_EVENT_OID = "SE.AE"
UNSCHEDULED_EVENT_OID = "SE.UNSCHEDULED"


# --- study metadata --------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasurementUnit:
    oid: str
    symbol: str


@dataclass(frozen=True)
class CodeList:
    oid: str
    name: str
    items: tuple[tuple[str, str], ...]  # (coded value, decode)


@dataclass(frozen=True)
class ItemDef:
    oid: str
    form_id: str
    field_id: str
    label: str
    data_type: str
    #: canonical unit first, then the alternative units accepted on entry
    unit_oids: tuple[str, ...] = ()
    codelist_oid: str | None = None


@dataclass(frozen=True)
class FormDef:
    oid: str
    form_id: str
    name: str
    item_group_oid: str
    item_oids: tuple[str, ...]


@dataclass(frozen=True)
class StudyEventDef:
    oid: str
    name: str
    #: study day (None: once per subject, or the adverse-event event)
    day: int | None
    form_oids: tuple[str, ...]
    repeating: bool = False
    event_type: str = "Scheduled"


@dataclass(frozen=True)
class StudyMetadata:
    """ODM ``Study``: one ``StudyEventDef`` per scheduled day, forms, items with units."""

    study_oid: str
    study_name: str
    description: str
    protocol_name: str
    mdv_oid: str
    mdv_name: str
    events: tuple[StudyEventDef, ...]
    forms: tuple[FormDef, ...]
    items: tuple[ItemDef, ...]
    units: tuple[MeasurementUnit, ...]
    codelists: tuple[CodeList, ...]
    definitions: Mapping[str, FormDefinition] = field(default_factory=dict)
    #: the allocated arm is exported (SE.RANDOMIZATION): the protocol is open label
    allocation_included: bool = False
    #: why the arm is (not) in the file; written as a ClinicalData annotation
    allocation_statement: str = ""

    def unit_oid(self, symbol: str) -> str:
        for u in self.units:
            if u.symbol == symbol:
                return u.oid
        raise KeyError(symbol)

    def definition(self, form_id: str) -> FormDefinition | None:
        return self.definitions.get(form_id)


def form_oid(form_id: str) -> str:
    return f"F.{form_id}"


def item_group_oid(form_id: str) -> str:
    return f"IG.{form_id}"


def item_oid(form_id: str, field_id: str) -> str:
    return f"I.{form_id}.{field_id}"


def day_event_oid(day: int) -> str:
    return f"SE.DAY{day}"


def _unit_oid(symbol: str) -> str:
    readable = (symbol.replace("µ", "u").replace("%", "percent").replace("^", "e")
                .replace("/", "_per_"))
    return "MU." + re.sub(r"[^A-Za-z0-9_.-]", "_", readable)


def study_metadata(protocol: Protocol, *,
                   forms: Mapping[str, FormDefinition] | None = None,
                   include_allocation: bool | None = None) -> StudyMetadata:
    """ODM metadata of ``protocol``: its schedule and the CRF library (plus adverse events).

    Every scheduled day becomes ``SE.DAY<n>`` with the forms due that day (whatever the
    arm; the arm restriction is the protocol's, not the export's); forms recorded once
    per subject are in ``SE.UNSCHEDULED``; adverse events in the repeating ``SE.AE``;
    the screening record in ``SE.SCREENING``; the allocation in ``SE.RANDOMIZATION``
    only when ``include_allocation`` (default: the protocol is open label,
    :func:`~trialdesk.interop.record_forms.allocation_exportable`). The code lists of
    the annotations' flags (queries, SDV, locks, deviations) close the list.
    """
    if include_allocation is None:
        include_allocation = allocation_exportable(protocol)
    screening = screening_form(protocol)
    library = {screening.id: screening}
    if include_allocation:
        randomization = randomization_form(protocol)
        library[randomization.id] = randomization
    library.update(forms if forms is not None else FORMS)
    library[ADVERSE_EVENT.id] = ADVERSE_EVENT
    by_day: dict[int, list[str]] = {}
    for a in protocol.schedule.assessments:
        for day in a.day_list():
            by_day.setdefault(day, []).append(a.form)
    used = [f for d in sorted(by_day) for f in by_day[d]]
    used += [u.form for u in protocol.schedule.unscheduled] + [ADVERSE_EVENT.id]
    used += list(library)  # every library form is defined, scheduled or not
    form_ids = [f for f in dict.fromkeys(used) if f in library]

    units: dict[str, MeasurementUnit] = {}
    codelists: list[CodeList] = []
    items: list[ItemDef] = []
    form_defs: list[FormDef] = []
    for fid in form_ids:
        definition = library[fid]
        oids = []
        for f in definition.fields:
            unit_oids = []
            for symbol in f.units:
                if symbol not in units:
                    oid = _unit_oid(symbol)
                    while any(u.oid == oid for u in units.values()):
                        oid += "_"
                    units[symbol] = MeasurementUnit(oid, symbol)
                unit_oids.append(units[symbol].oid)
            codelist = None
            if f.choices:
                codelist = f"CL.{fid}.{f.id}"
                codelists.append(CodeList(codelist, f"{definition.label}: {f.label}",
                                          f.choices))
            items.append(ItemDef(item_oid(fid, f.id), fid, f.id, f.label,
                                 _DATA_TYPES[f.kind], tuple(unit_oids), codelist))
            oids.append(item_oid(fid, f.id))
        form_defs.append(FormDef(form_oid(fid), fid, definition.label, item_group_oid(fid),
                                 tuple(oids)))
    events = [StudyEventDef(SCREENING_EVENT_OID, "Screening", None,
                            (form_oid(screening.id),), event_type="Unscheduled")]
    if include_allocation:
        events.append(StudyEventDef(RANDOMIZATION_EVENT_OID, "Randomization", None,
                                    (form_oid(randomization.id),), event_type="Unscheduled"))
    events += [StudyEventDef(day_event_oid(d), f"Day {d}", d,
                             tuple(form_oid(f) for f in dict.fromkeys(by_day[d])))
               for d in sorted(by_day)]
    once = tuple(form_oid(u.form) for u in protocol.schedule.unscheduled)
    if once:
        events.append(StudyEventDef(UNSCHEDULED_EVENT_OID, "Once per subject", None, once,
                                    event_type="Unscheduled"))
    events.append(StudyEventDef(AE_EVENT_OID, "Adverse events", None,
                                (form_oid(ADVERSE_EVENT.id),), repeating=True,
                                event_type="Common"))
    codelists.append(CodeList(FLAG_TYPE_CODELIST, "Annotation flag types", FLAG_TYPES))
    codelists += [CodeList(flag_codelist(kind), f"Annotation flag: {kind}", values)
                  for kind, values in FLAG_VALUES.items()]
    statement = allocation_statement(protocol)
    if include_allocation != allocation_exportable(protocol):  # the caller decided
        statement = ("Allocated arm included (SE.RANDOMIZATION) on the exporter's request."
                     if include_allocation else
                     "Allocated arm omitted on the exporter's request.")
    ident = protocol.identifiers
    return StudyMetadata(
        study_oid=f"ST.{protocol.protocol_id}", study_name=ident.acronym,
        description=ident.title, protocol_name=ident.sponsor_protocol_id or ident.registry_id,
        mdv_oid=f"MDV.{protocol.protocol_id}.{protocol.protocol_version}",
        mdv_name=f"{ident.acronym} protocol v{protocol.protocol_version} "
                 f"(SHA-256 {protocol.content_sha256 or 'unknown'})",
        events=tuple(events), forms=tuple(form_defs), items=tuple(items),
        units=tuple(units.values()), codelists=tuple(codelists),
        definitions={fid: library[fid] for fid in form_ids},
        allocation_included=include_allocation, allocation_statement=statement)


# --- clinical data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    """Who (login name), where (site code), when (aware; written in UTC), why, which row."""

    user: str
    location: str
    at: dt.datetime
    reason: str = ""
    source_id: str = ""


@dataclass(frozen=True)
class RecordVersion:
    """One stored version of a record: its values as entered, and the audit of the save."""

    values: Mapping[str, Any]
    audit: Audit
    entered_in_error: bool = False


@dataclass(frozen=True)
class SignatureEntry:
    """An electronic signature (21 CFR 11.50): signer, site, meaning, UTC time, digest."""

    user: str
    location: str
    meaning: str
    at: dt.datetime
    digest: str = ""
    printed_name: str = ""


@dataclass(frozen=True)
class Note:
    """A data-management fact about a record or a subject: an ODM ``Annotation``.

    A query step, a source-data verification (or its withdrawal), a lock or unlock, a
    protocol deviation's change. ``kind`` is the ``FlagType`` (query, sdv, lock,
    deviation), ``state`` the ``FlagValue`` after the step (code lists in
    :mod:`trialdesk.interop.record_forms`), ``action`` the long CSV's transaction
    (``query_raised``, ``sdv``, ``lock``, ``deviation_acknowledged`` …), ``comment`` the
    text (who, when in UTC, the message), ``field_id`` the item it is about (None: the
    record), ``ref`` the CSV's ``item_id`` for notes not about an item (deviation code).
    """

    kind: str
    state: str
    action: str
    audit: Audit
    comment: str
    field_id: str | None = None
    #: ODM Comment/@SponsorOrSite: "Sponsor" (data manager, monitor) or "Site"
    side: str | None = None
    ref: str = ""


@dataclass(frozen=True)
class FormInstance:
    """One record (a form of a day, or an adverse event) with every version, oldest first."""

    form_id: str
    day: int | None
    record_key: str
    versions: tuple[RecordVersion, ...]
    signatures: tuple[SignatureEntry, ...] = ()
    #: queries and source-data verification of the record, in any order
    notes: tuple[Note, ...] = ()
    #: the study event when not implied by form and day (SE.SCREENING, SE.RANDOMIZATION)
    event: str | None = None

    @property
    def event_oid(self) -> str:
        if self.event:
            return self.event
        if self.form_id == ADVERSE_EVENT.id:
            return AE_EVENT_OID
        return UNSCHEDULED_EVENT_OID if self.day is None else day_event_oid(self.day)

    @property
    def event_repeat_key(self) -> str | None:
        return self.record_key if self.form_id == ADVERSE_EVENT.id else None


@dataclass(frozen=True)
class SubjectRecord:
    """A subject: key, site, the randomization's (or screening's) audit, records,
    signatures and subject-level notes (locks, deviations).

    ``randomized`` False: a patient screened but never randomized, keyed by the
    screening number, whose only record is the screening form (CONSORT screening log).
    """

    subject_key: str
    site: str
    audit: Audit
    forms: tuple[FormInstance, ...] = ()
    #: casebook signatures (whole casebook signed)
    signatures: tuple[SignatureEntry, ...] = ()
    notes: tuple[Note, ...] = ()
    randomized: bool = True


@dataclass(frozen=True)
class UserInfo:
    username: str
    full_name: str = ""


@dataclass(frozen=True)
class SiteInfo:
    code: str
    name: str


@dataclass(frozen=True)
class ItemChange:
    """One item's transaction within a record version."""

    field_id: str
    transaction: str  # Insert / Update / Remove
    value: Any  # as entered (None for Remove)


@dataclass(frozen=True)
class FormTransaction:
    """A version of a record (or a signature of it) as an ODM transaction."""

    transaction: str  # Insert / Update / Remove (entered in error) / Context (signature,
    # note)
    version: int  # 1 = first save; a signature or note carries the version it follows
    audit: Audit | None
    items: tuple[ItemChange, ...] = ()
    signature: SignatureEntry | None = None
    note: Note | None = None


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _field_order(definition: FormDefinition | None, *values: Mapping[str, Any]) -> list[str]:
    known = list(definition.field_ids) if definition else []
    extra = sorted({k for v in values for k in v} - set(known))
    return known + extra


def transactions(instance: FormInstance,
                 definition: FormDefinition | None = None) -> Iterator[FormTransaction]:
    """The record's versions as transactions, signatures and notes interleaved by time.

    Version 1 is an ``Insert`` of every item with a value; each later version an
    ``Update`` listing only the items that changed; the version that marks the record
    entered in error is a ``Remove``. A signature or a note (query step, SDV) is a
    ``Context`` transaction following the last version saved at or before its time.
    """
    contexts = sorted([(s.at, 0, i, s) for i, s in enumerate(instance.signatures)]
                      + [(n.audit.at, 1, i, n) for i, n in enumerate(instance.notes)],
                      key=lambda c: c[:3])

    def context(number: int, entry: SignatureEntry | Note) -> FormTransaction:
        if isinstance(entry, Note):
            return FormTransaction(CONTEXT, number, entry.audit, note=entry)
        return FormTransaction(CONTEXT, number, None, signature=entry)

    previous: Mapping[str, Any] = {}
    retired = False
    for number, version in enumerate(instance.versions, start=1):
        nxt = (instance.versions[number].audit.at if number < len(instance.versions)
               else None)
        if version.entered_in_error and not retired:
            retired = True
            yield FormTransaction(REMOVE, number, version.audit)
        else:
            changes = []
            for fid in _field_order(definition, previous, version.values):
                old, new = previous.get(fid), version.values.get(fid)
                if _present(new) and not _present(old):
                    changes.append(ItemChange(fid, INSERT, new))
                elif _present(new) and new != old:
                    changes.append(ItemChange(fid, UPDATE, new))
                elif _present(old) and not _present(new):
                    changes.append(ItemChange(fid, REMOVE, None))
            yield FormTransaction(INSERT if number == 1 else UPDATE, number, version.audit,
                                  tuple(changes))
            previous = version.values
        while contexts and (nxt is None or contexts[0][0] < nxt):
            yield context(number, contexts.pop(0)[3])
    for c in contexts:  # a signature or note with no version (should not happen): shown
        yield context(len(instance.versions), c[3])


def _number(value: float | int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return repr(float(value))


def value_text(definition: FormDefinition | None, field_id: str,
               value: Any) -> tuple[str, str | None]:
    """An item's value as text and its unit symbol (None: the item has no unit).

    ``{"value": 36, "unit": "mg/dL"}`` gives ``("36", "mg/dL")``; a bare number gives the
    field's canonical unit; lists are joined with ``;``; other mappings are JSON.
    """
    fdef = None
    if definition is not None and field_id in definition.field_ids:
        fdef = definition.field(field_id)
    unit = fdef.unit if fdef is not None else None
    if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "unit"}:
        unit = value.get("unit") or unit
        value = value["value"]
    if value is None:
        return "", unit
    if isinstance(value, bool):
        return ("true" if value else "false"), unit
    if isinstance(value, int | float):
        return _number(value), unit
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value), unit
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, ensure_ascii=False), unit
    return str(value), unit


def utc_stamp(t: dt.datetime) -> str:
    """ISO 8601 in UTC with 'Z' (``2026-03-01T02:15:00Z``; microseconds when not zero)."""
    if t.tzinfo is None:
        raise ValueError(f"time without UTC offset in the audit trail: {t!r}")
    u = t.astimezone(dt.UTC)
    text = u.strftime("%Y-%m-%dT%H:%M:%S")
    if u.microsecond:
        text += f".{u.microsecond:06d}"
    return text + "Z"


# --- XML writing ---------------------------------------------------------------------------

#: characters XML 1.0 cannot carry (control characters): shown as U+FFFD
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _t(text: Any) -> str:
    return escape(_NOT_XML.sub("\ufffd", str(text)))


def _a(**attrs: Any) -> str:
    return "".join(f" {k}={quoteattr(_NOT_XML.sub(chr(0xFFFD), str(v)))}"
                   for k, v in attrs.items() if v is not None)


def _open(tag: str, **attrs: Any) -> str:
    return f"<{tag}{_a(**attrs)}>"


def _empty(tag: str, **attrs: Any) -> str:
    return f"<{tag}{_a(**attrs)}/>"


def _translated(tag: str, text: str) -> str:
    return f'<{tag}><TranslatedText xml:lang="en">{_t(text)}</TranslatedText></{tag}>'


def user_oid(username: str) -> str:
    return f"USR.{username}"


def location_oid(site_code: str) -> str:
    return f"LOC.{site_code}"


def signature_def_oid(meaning: str) -> str:
    return f"SD.{meaning}"


@dataclass
class ExportCounts:
    """What an export wrote (filled while it streams)."""

    subjects: int = 0
    forms: int = 0
    form_transactions: int = 0
    item_data: int = 0
    signatures: int = 0
    removed_forms: int = 0
    #: subjects screened but never randomized (their screening form)
    screenings: int = 0
    #: annotations: query steps, SDV marks (and withdrawals), lock changes, deviation changes
    query_steps: int = 0
    sdv_marks: int = 0
    locks: int = 0
    deviations: int = 0

    def count_note(self, note: Note) -> None:
        name = {"query": "query_steps", "sdv": "sdv_marks", "lock": "locks",
                "deviation": "deviations"}.get(note.kind)
        if name:
            setattr(self, name, getattr(self, name) + 1)

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class OdmWriter:
    """Streams an ODM 1.3.2 document: :meth:`chunks` yields text, one subject per chunk.

    ``users`` and ``sites`` must name everyone and every site the subjects' audit
    records and signatures refer to (ODM defines them in ``AdminData``, before the
    clinical data); an unknown one is added as a bare ``User``/``Location`` is not
    possible once streaming has begun, so it raises ``KeyError``.
    """

    def __init__(self, metadata: StudyMetadata, *, users: Sequence[UserInfo],
                 sites: Sequence[SiteInfo], file_oid: str, created_at: dt.datetime,
                 as_of: dt.datetime | None = None, description: str = "",
                 source_version: str = "") -> None:
        self.meta = metadata
        self.users = {u.username: u for u in users}
        self.users.setdefault(SYSTEM_USER, UserInfo(SYSTEM_USER, "TrialDesk (system)"))
        self.sites = {s.code: s for s in sites}
        self.file_oid = file_oid
        self.created_at = created_at
        self.as_of = as_of
        self.description = description
        self.source_version = source_version
        self.counts = ExportCounts()

    # -- document -----------------------------------------------------------------------
    def chunks(self, subjects: Iterable[SubjectRecord],
               study_notes: Iterable[Note] = ()) -> Iterator[str]:
        """The document; ``study_notes`` (trial-wide locks) close ``ClinicalData`` as
        ``Annotations``, after the statement on the allocated arm."""
        yield self._header()
        yield self._study()
        yield self._admin()
        yield _open("ClinicalData", StudyOID=self.meta.study_oid,
                    MetaDataVersionOID=self.meta.mdv_oid) + "\n"
        for subject in subjects:
            yield self._subject(subject)
        yield self._study_annotations(study_notes) + "</ClinicalData>\n</ODM>\n"

    def write(self, out: Any, subjects: Iterable[SubjectRecord],
              study_notes: Iterable[Note] = ()) -> ExportCounts:
        """Write to a text file object, chunk by chunk."""
        for chunk in self.chunks(subjects, study_notes):
            out.write(chunk)
        return self.counts

    def _study_annotations(self, notes: Iterable[Note]) -> str:
        m = self.meta
        p = ["<Annotations>"]
        if m.allocation_statement:
            flag = self._flag("allocation", "included" if m.allocation_included else "omitted")
            p.append(f'<Annotation SeqNum="1"><Comment SponsorOrSite="Sponsor">'
                     f"{_t(m.allocation_statement)}</Comment>{flag}</Annotation>")
        for n in sorted(notes, key=lambda n: n.audit.at):
            self.counts.count_note(n)
            p.append(self._annotation(n, len(p)))
        p.append("</Annotations>\n")
        return "".join(p) if len(p) > 2 else ""

    def _header(self) -> str:
        attrs = _a(xmlns=ODM_NAMESPACE, Description=self.description or None,
                   FileType="Transactional", Archival="Yes", Granularity="All",
                   FileOID=self.file_oid, CreationDateTime=utc_stamp(self.created_at),
                   AsOfDateTime=utc_stamp(self.as_of) if self.as_of else None,
                   ODMVersion=ODM_VERSION, Originator=SOURCE_SYSTEM,
                   SourceSystem=SOURCE_SYSTEM, SourceSystemVersion=self.source_version or None)
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<ODM{attrs}>\n'

    def _study(self) -> str:
        m = self.meta
        p = [f"<Study{_a(OID=m.study_oid)}>\n<GlobalVariables>"
             f"<StudyName>{_t(m.study_name)}</StudyName>"
             f"<StudyDescription>{_t(m.description)}</StudyDescription>"
             f"<ProtocolName>{_t(m.protocol_name)}</ProtocolName></GlobalVariables>\n"]
        if m.units:
            p.append("<BasicDefinitions>")
            p += [f"<MeasurementUnit{_a(OID=u.oid, Name=u.symbol)}>"
                  f"{_translated('Symbol', u.symbol)}</MeasurementUnit>" for u in m.units]
            p.append("</BasicDefinitions>\n")
        p.append(f"<MetaDataVersion{_a(OID=m.mdv_oid, Name=m.mdv_name)}>\n<Protocol>")
        p += [f"<StudyEventRef{_a(StudyEventOID=e.oid, OrderNumber=i, Mandatory='No')}/>"
              for i, e in enumerate(m.events, start=1)]
        p.append("</Protocol>\n")
        for e in m.events:
            p.append(_open("StudyEventDef", OID=e.oid, Name=e.name,
                           Repeating="Yes" if e.repeating else "No", Type=e.event_type))
            p += [f"<FormRef{_a(FormOID=f, OrderNumber=i, Mandatory='No')}/>"
                  for i, f in enumerate(e.form_oids, start=1)]
            p.append("</StudyEventDef>\n")
        for f in m.forms:
            p.append(f"<FormDef{_a(OID=f.oid, Name=f.name, Repeating='No')}>"
                     f"<ItemGroupRef{_a(ItemGroupOID=f.item_group_oid, Mandatory='Yes')}/>"
                     "</FormDef>\n")
        for f in m.forms:
            p.append(f"<ItemGroupDef{_a(OID=f.item_group_oid, Name=f.name, Repeating='No')}>")
            p += [f"<ItemRef{_a(ItemOID=i, OrderNumber=n, Mandatory='No')}/>"
                  for n, i in enumerate(f.item_oids, start=1)]
            p.append("</ItemGroupDef>\n")
        for i in m.items:
            p.append(_open("ItemDef", OID=i.oid, Name=f"{i.form_id}.{i.field_id}",
                           DataType=i.data_type) + _translated("Question", i.label))
            p += [f"<MeasurementUnitRef{_a(MeasurementUnitOID=u)}/>" for u in i.unit_oids]
            if i.codelist_oid:
                p.append(f"<CodeListRef{_a(CodeListOID=i.codelist_oid)}/>")
            p.append("</ItemDef>\n")
        for c in m.codelists:
            p.append(f"<CodeList{_a(OID=c.oid, Name=c.name, DataType='text')}>")
            p += [f"<CodeListItem{_a(CodedValue=code)}>{_translated('Decode', decode)}"
                  "</CodeListItem>" for code, decode in c.items]
            p.append("</CodeList>\n")
        p.append("</MetaDataVersion>\n</Study>\n")
        return "".join(p)

    def _admin(self) -> str:
        m = self.meta
        p = [f"<AdminData{_a(StudyOID=m.study_oid)}>\n"]
        for u in sorted(self.users.values(), key=lambda u: u.username):
            full = f"<FullName>{_t(u.full_name)}</FullName>" if u.full_name else ""
            p.append(f"<User{_a(OID=user_oid(u.username))}><LoginName>{_t(u.username)}"
                     f"</LoginName>{full}</User>\n")
        effective = (self.as_of or self.created_at).astimezone(dt.UTC).date().isoformat()
        for s in sorted(self.sites.values(), key=lambda s: s.code):
            p.append(_open("Location", OID=location_oid(s.code), Name=s.name,
                           LocationType="Site")
                     + _empty("MetaDataVersionRef", StudyOID=m.study_oid,
                              MetaDataVersionOID=m.mdv_oid, EffectiveDate=effective)
                     + "</Location>\n")
        for meaning in SignatureMeaning:
            p.append(_open("SignatureDef", OID=signature_def_oid(meaning.value),
                           Methodology="Electronic")
                     + f"<Meaning>{_t(meaning.value + ': ' + STATEMENTS[meaning])}</Meaning>"
                     "<LegalReason>21 CFR Part 11 electronic signature (11.50, 11.70): the "
                     "signer re-entered the password; the signature is linked to the "
                     "SHA-256 of the content signed.</LegalReason></SignatureDef>\n")
        p.append("</AdminData>\n")
        return "".join(p)

    # -- clinical data ------------------------------------------------------------------
    def _user(self, username: str) -> str:
        if username not in self.users:
            raise KeyError(f"user '{username}' is not in the export's AdminData")
        return user_oid(username)

    def _location(self, code: str) -> str:
        if code not in self.sites:
            raise KeyError(f"site '{code}' is not in the export's AdminData")
        return location_oid(code)

    def _audit(self, a: Audit) -> str:
        reason = f"<ReasonForChange>{_t(a.reason)}</ReasonForChange>" if a.reason else ""
        source = f"<SourceID>{_t(a.source_id)}</SourceID>" if a.source_id else ""
        return (f"<AuditRecord><UserRef{_a(UserOID=self._user(a.user))}/>"
                f"<LocationRef{_a(LocationOID=self._location(a.location))}/>"
                f"<DateTimeStamp>{utc_stamp(a.at)}</DateTimeStamp>{reason}{source}"
                "</AuditRecord>")

    def _signature(self, s: SignatureEntry) -> str:
        self.counts.signatures += 1
        return (f"<Signature><UserRef{_a(UserOID=self._user(s.user))}/>"
                f"<LocationRef{_a(LocationOID=self._location(s.location))}/>"
                f"<SignatureRef{_a(SignatureOID=signature_def_oid(s.meaning))}/>"
                f"<DateTimeStamp>{utc_stamp(s.at)}</DateTimeStamp></Signature>")

    @staticmethod
    def _flag(kind: str, state: str) -> str:
        return (f"<Flag><FlagValue{_a(CodeListOID=flag_codelist(kind))}>{_t(state)}"
                f"</FlagValue><FlagType{_a(CodeListOID=FLAG_TYPE_CODELIST)}>{_t(kind)}"
                "</FlagType></Flag>")

    def _annotation(self, n: Note, seq: int = 1) -> str:
        comment = f"<Comment{_a(SponsorOrSite=n.side)}>{_t(n.comment)}</Comment>"
        return (f"<Annotation{_a(SeqNum=seq)}>{comment}{self._flag(n.kind, n.state)}"
                "</Annotation>")

    @staticmethod
    def _signature_note(s: SignatureEntry) -> str:
        comment = (f"Signed by {s.printed_name or s.user} ({s.meaning}); SHA-256 of the "
                   f"content signed: {s.digest}")
        return f'<Annotation SeqNum="1"><Comment>{_t(comment)}</Comment></Annotation>'

    def _subject(self, subject: SubjectRecord) -> str:
        if subject.randomized:
            self.counts.subjects += 1
        else:
            self.counts.screenings += 1
        p = [f"<SubjectData{_a(SubjectKey=subject.subject_key, TransactionType=INSERT)}>",
             self._audit(subject.audit),
             f"<SiteRef{_a(LocationOID=self._location(subject.site))}/>\n"]
        events: dict[tuple[str, str | None], list[FormInstance]] = {}
        for f in subject.forms:
            events.setdefault((f.event_oid, f.event_repeat_key), []).append(f)
        order = {e.oid: i for i, e in enumerate(self.meta.events)}
        for (event, repeat), forms in sorted(
                events.items(), key=lambda kv: (order.get(kv[0][0], len(order)),
                                                int(kv[0][1]) if (kv[0][1] or "").isdigit()
                                                else 0, kv[0][1] or "")):
            p.append(_open("StudyEventData", StudyEventOID=event, StudyEventRepeatKey=repeat,
                           TransactionType=CONTEXT) + "\n")
            for f in forms:
                p.append(self._form(f))
            p.append("</StudyEventData>\n")
        p.append("</SubjectData>\n")
        entries = sorted([(s.at, 0, i, s) for i, s in enumerate(subject.signatures)]
                         + [(n.audit.at, 1, i, n) for i, n in enumerate(subject.notes)],
                         key=lambda e: e[:3])
        head = f"<SubjectData{_a(SubjectKey=subject.subject_key, TransactionType=CONTEXT)}>"
        for *_, entry in entries:
            if isinstance(entry, Note):
                self.counts.count_note(entry)
                p.append(f"{head}{self._audit(entry.audit)}"
                         f"<SiteRef{_a(LocationOID=self._location(subject.site))}/>"
                         f"{self._annotation(entry)}</SubjectData>\n")
            else:
                p.append(f"{head}{self._signature(entry)}{self._signature_note(entry)}"
                         "</SubjectData>\n")
        return "".join(p)

    def _form(self, f: FormInstance) -> str:
        self.counts.forms += 1
        definition = self.meta.definition(f.form_id)
        p = []
        for tx in transactions(f, definition):
            self.counts.form_transactions += 1
            head = _open("FormData", FormOID=form_oid(f.form_id), FormRepeatKey=f.record_key,
                         TransactionType=tx.transaction)
            if tx.signature is not None:
                p.append(head + self._signature(tx.signature)
                         + self._signature_note(tx.signature) + "</FormData>\n")
                continue
            if tx.note is not None:
                p.append(head + self._form_note(f.form_id, definition, tx.note)
                         + "</FormData>\n")
                continue
            assert tx.audit is not None
            audit = self._audit(tx.audit)
            if tx.transaction == REMOVE:
                self.counts.removed_forms += 1
                p.append(head + audit + "</FormData>\n")
                continue
            p.append(head + audit)
            if tx.items:
                p.append(_open("ItemGroupData", ItemGroupOID=item_group_oid(f.form_id),
                               TransactionType=tx.transaction))
                for change in tx.items:
                    p.append(self._item(f.form_id, definition, change, audit))
                p.append("</ItemGroupData>")
            p.append("</FormData>\n")
        return "".join(p)

    def _form_note(self, form_id: str, definition: FormDefinition | None, n: Note) -> str:
        """A query step or SDV mark: on the item it names (a ``Context`` ItemData with
        the step's AuditRecord and the Annotation), else on the form."""
        self.counts.count_note(n)
        audit = self._audit(n.audit)
        if n.field_id and definition is not None and n.field_id in definition.field_ids:
            return (_open("ItemGroupData", ItemGroupOID=item_group_oid(form_id),
                          TransactionType=CONTEXT)
                    + _open("ItemData", ItemOID=item_oid(form_id, n.field_id),
                            TransactionType=CONTEXT)
                    + audit + self._annotation(n) + "</ItemData></ItemGroupData>")
        return audit + self._annotation(n)

    def _item(self, form_id: str, definition: FormDefinition | None, change: ItemChange,
              audit: str) -> str:
        self.counts.item_data += 1
        oid = item_oid(form_id, change.field_id)
        if change.transaction == REMOVE:
            return f"<ItemData{_a(ItemOID=oid, TransactionType=REMOVE)}>{audit}</ItemData>"
        text, unit = value_text(definition, change.field_id, change.value)
        unit_ref = ""
        if unit:
            unit_ref = f"<MeasurementUnitRef{_a(MeasurementUnitOID=self._unit(unit))}/>"
        return (f"<ItemData{_a(ItemOID=oid, TransactionType=change.transaction, Value=text)}>"
                f"{audit}{unit_ref}</ItemData>")

    def _unit(self, symbol: str) -> str:
        try:
            return self.meta.unit_oid(symbol)
        except KeyError:
            raise KeyError(f"unit '{symbol}' is not defined in the export's metadata") from None
