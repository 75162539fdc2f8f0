"""The complete trial record as one long CSV: a row per item value per version.

The same records as the ODM export (:mod:`trialdesk.interop.odm`), flattened for
spreadsheets and statistical packages: one row per (subject, study day, form, item)
and version in which the item got, changed or lost a value, with the unit, the UTC time,
the user and the reason of the change. The current value of an item is its last row;
a record entered in error ends with a ``remove`` row for each item it held (value
empty), so "last row per record and item" never shows a retired value as current.
Signatures are rows with transaction ``sign`` (item empty, value = the meaning, the
digest of the signed content in ``reason``). Rows are written as they are produced
(``csv.writer`` over a text stream): memory stays flat whatever the trial's size.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from trialdesk.interop.odm import (
    CONTEXT,
    REMOVE,
    ExportCounts,
    FormInstance,
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


def subject_rows(meta: StudyMetadata, subject: SubjectRecord,
                 counts: ExportCounts | None = None) -> Iterator[list[Any]]:
    """The rows of one subject, record by record, version by version."""
    counts = counts if counts is not None else ExportCounts()
    counts.subjects += 1
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
    for s in sorted(subject.signatures, key=lambda s: s.at):
        counts.signatures += 1
        yield _signature_row(subject, None, "", s)


def rows(meta: StudyMetadata, subjects: Iterable[SubjectRecord],
         counts: ExportCounts | None = None) -> Iterator[list[Any]]:
    """The header, then every subject's rows."""
    yield list(COLUMNS)
    for subject in subjects:
        yield from subject_rows(meta, subject, counts)


def write_csv(out: Any, meta: StudyMetadata, subjects: Iterable[SubjectRecord]) -> ExportCounts:
    """Write the long CSV to a text file object (open it with ``newline=""``)."""
    counts = ExportCounts()
    writer = csv.writer(out)
    for row in rows(meta, subjects, counts):
        writer.writerow(row)
    return counts
