"""The complete trial record as one long CSV: a row per item value per version.

The same records as the ODM export (:mod:`trialdesk.interop.odm`), flattened for
spreadsheets and statistical packages: one row per (subject, study day, form, item)
and version in which the item got, changed or lost a value, with the unit, the UTC time,
the user and the reason of the change. The current value of an item is its last row;
a record entered in error ends with a ``remove`` row for each item it held (value
empty), so "last row per record and item" never shows a retired value as current.
Signatures are rows with transaction ``sign`` (item empty, value = the meaning, the
digest of the signed content in ``reason``). Data-management steps are rows too
(``query_raised`` … ``query_withdrawn``, ``sdv``, ``sdv_withdrawn``, ``lock``,
``unlock``, ``deviation_<status>``: value = the state after the step, reason = the
comment with who, when and the message); the screening record and (open-label trials
only) the allocation are forms like the others (events ``SE.SCREENING``,
``SE.RANDOMIZATION``). Rows are written as they are produced (``csv.writer`` over a
text stream): memory stays flat whatever the trial's size.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from trialdesk.interop.odm import (
    CONTEXT,
    REMOVE,
    ExportCounts,
    FormInstance,
    Note,
    SignatureEntry,
    StudyMetadata,
    SubjectRecord,
    transactions,
    utc_stamp,
    value_text,
)

#: the CSV's columns, in order (docs/export.md)
COLUMNS = ("subject_id", "site", "day", "event", "form_id", "record_id", "item_id", "value",
           "unit", "transaction", "version", "changed_at_utc", "changed_by", "reason")


def _signature_row(subject: SubjectRecord, form: FormInstance | None, version: int | str,
                   s: SignatureEntry) -> list[Any]:
    reason = f"signed by {s.printed_name or s.user} ({s.meaning}); sha256 {s.digest}"
    if form is None:
        return [subject.subject_key, subject.site, "", "casebook", "", "", "", s.meaning, "",
                "sign", "", utc_stamp(s.at), s.user, reason]
    return [subject.subject_key, subject.site, "" if form.day is None else form.day,
            form.event_oid, form.form_id, form.record_key, "", s.meaning, "", "sign", version,
            utc_stamp(s.at), s.user, reason]


def _note_row(subject: SubjectRecord | None, form: FormInstance | None, version: int | str,
              n: Note) -> list[Any]:
    tail = [n.state, "", n.action, version, utc_stamp(n.audit.at), n.audit.user, n.comment]
    if subject is None:  # trial-wide
        return ["", "", "", "trial", n.kind, "", n.ref, *tail]
    if form is None:  # subject-level: a lock, a deviation
        return [subject.subject_key, subject.site, "", "subject", n.kind, "", n.ref, *tail]
    return [subject.subject_key, subject.site, "" if form.day is None else form.day,
            form.event_oid, form.form_id, form.record_key, n.field_id or n.ref, *tail]


def subject_rows(meta: StudyMetadata, subject: SubjectRecord,
                 counts: ExportCounts | None = None) -> Iterator[list[Any]]:
    """The rows of one subject, record by record, version by version."""
    counts = counts if counts is not None else ExportCounts()
    if subject.randomized:
        counts.subjects += 1
    else:
        counts.screenings += 1
    for form in subject.forms:
        counts.forms += 1
        definition = meta.definition(form.form_id)
        day = "" if form.day is None else form.day
        base = [subject.subject_key, subject.site, day, form.event_oid, form.form_id,
                form.record_key]
        held: dict[str, str] = {}
        for tx in transactions(form, definition):
            counts.form_transactions += 1
            if tx.transaction == CONTEXT and tx.signature is not None:
                counts.signatures += 1
                yield _signature_row(subject, form, tx.version, tx.signature)
                continue
            if tx.note is not None:
                counts.count_note(tx.note)
                yield _note_row(subject, form, tx.version, tx.note)
                continue
            assert tx.audit is not None
            a = tx.audit
            tail = [tx.version, utc_stamp(a.at), a.user, a.reason]
            if tx.transaction == REMOVE:
                counts.removed_forms += 1
                for fid, unit in held.items():
                    counts.item_data += 1
                    yield [*base, fid, "", unit, "remove", *tail]
                held.clear()
                continue
            for change in tx.items:
                counts.item_data += 1
                if change.transaction == REMOVE:
                    unit = held.pop(change.field_id, "")
                    yield [*base, change.field_id, "", unit, "remove", *tail]
                    continue
                text, unit = value_text(definition, change.field_id, change.value)
                held[change.field_id] = unit or ""
                yield [*base, change.field_id, text, unit or "", change.transaction.lower(),
                       *tail]
    entries = sorted([(s.at, 0, i, s) for i, s in enumerate(subject.signatures)]
                     + [(n.audit.at, 1, i, n) for i, n in enumerate(subject.notes)],
                     key=lambda e: e[:3])
    for *_, entry in entries:
        if isinstance(entry, Note):
            counts.count_note(entry)
            yield _note_row(subject, None, "", entry)
        else:
            counts.signatures += 1
            yield _signature_row(subject, None, "", entry)


def rows(meta: StudyMetadata, subjects: Iterable[SubjectRecord],
         counts: ExportCounts | None = None, *, study_notes: Iterable[Note] = (),
         as_of: dt.datetime | None = None) -> Iterator[list[Any]]:
    """The header, a ``allocation_omitted`` row when the arm is left out (masked trial;
    time = ``as_of``), every subject's rows, then trial-wide notes (trial locks)."""
    counts = counts if counts is not None else ExportCounts()
    yield list(COLUMNS)
    if not meta.allocation_included:
        yield ["", "", "", "trial", "randomization", "", "", "omitted", "",
               "allocation_omitted", "", utc_stamp(as_of) if as_of else "", "",
               meta.allocation_statement]
    for subject in subjects:
        yield from subject_rows(meta, subject, counts)
    for n in sorted(study_notes, key=lambda n: n.audit.at):
        counts.count_note(n)
        yield _note_row(None, None, "", n)


def write_csv(out: Any, meta: StudyMetadata, subjects: Iterable[SubjectRecord], *,
              study_notes: Iterable[Note] = (), as_of: dt.datetime | None = None
              ) -> ExportCounts:
    """Write the long CSV to a text file object (open it with ``newline=""``)."""
    counts = ExportCounts()
    writer = csv.writer(out)
    for row in rows(meta, subjects, counts, study_notes=study_notes, as_of=as_of):
        writer.writerow(row)
    return counts
