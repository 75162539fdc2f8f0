"""Run an export: the database read in chunks, the core writer, the bytes hashed and logged.

:func:`stream_export` yields the file's bytes as they are produced (for a
``StreamingHttpResponse`` or a file opened by the command line). The
:class:`~trialdesk.web.exports.models.ExportLog` row is written before the first byte
and completed after the last one with the SHA-256 of the bytes, their size and the
counts (subjects, forms, item values, signatures, forms entered in error).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import itertools
import uuid
from collections.abc import Collection, Iterator
from typing import Any

from trialdesk import __version__
from trialdesk.clinical.timeutil import utcnow
from trialdesk.interop import long_csv
from trialdesk.interop.odm import ExportCounts, Note, OdmWriter, study_metadata
from trialdesk.interop.record_forms import allocation_exportable, allocation_statement
from trialdesk.protocol import Protocol
from trialdesk.web.exports import reader
from trialdesk.web.exports.models import ExportFormat, ExportLog

CONTENT_TYPES = {ExportFormat.ODM: "application/xml", ExportFormat.CSV: "text/csv"}
#: CSV rows handed on per chunk
CSV_ROWS_PER_CHUNK = 500


def filename(protocol: Protocol, fmt: str, started_at: dt.datetime) -> str:
    stamp = started_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{protocol.protocol_id}-record-{stamp}.{'xml' if fmt == 'odm' else 'csv'}"


class _Line:
    """A file-like object whose write returns the text (csv.writer → one line)."""

    def write(self, text: str) -> str:
        return text


def _csv_chunks(protocol: Protocol, subjects: Any, counts: ExportCounts,
                study_notes: list[Note], as_of: dt.datetime,
                include_allocation: bool) -> Iterator[str]:
    writer = csv.writer(_Line())
    lines: list[str] = []
    meta = study_metadata(protocol, include_allocation=include_allocation)
    for row in long_csv.rows(meta, subjects, counts, study_notes=study_notes, as_of=as_of):
        lines.append(writer.writerow(row))
        if len(lines) >= CSV_ROWS_PER_CHUNK:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def start_export(fmt: str, protocol: Protocol, *, user: Any = None, requested_by: str = "",
                 channel: str = "web", site_codes: Collection[str] | None = None,
                 now: dt.datetime | None = None) -> ExportLog:
    """The log row of a new export (written before any byte is produced)."""
    if fmt not in ExportFormat.values:
        raise ValueError(f"unknown export format {fmt!r}")
    now = now or utcnow()
    codes = sorted(site_codes) if site_codes is not None else [s.code for s in reader.sites()]
    log = ExportLog(format=fmt, channel=channel, user=user,
                    requested_by=requested_by or (user.get_username() if user else ""),
                    sites=",".join(codes), file_oid=f"{protocol.protocol_id}.{uuid.uuid4()}",
                    started_at=now, as_of=now,
                    allocation_included=allocation_exportable(protocol),
                    note=allocation_statement(protocol))
    log._history_user = user  # type: ignore[attr-defined]
    log._change_reason = f"{fmt} export started ({channel})"  # type: ignore[attr-defined]
    log.save()
    return log


def stream_export(log: ExportLog, protocol: Protocol, *,
                  chunk_size: int = reader.DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """The export's bytes, chunk by chunk; completes ``log`` after the last one.

    Randomized subjects first (by subject id), then the patients screened but never
    randomized (by screening number), then the trial-wide lock changes. The allocated
    arm is in the file only when ``log.allocation_included`` (set from the protocol's
    masking when the export started).
    """
    codes = [c for c in log.sites.split(",") if c]
    include = log.allocation_included
    subjects = itertools.chain(
        reader.subjects(protocol, as_of=log.as_of, site_codes=codes, chunk_size=chunk_size,
                        include_allocation=include),
        reader.screened_only(protocol, as_of=log.as_of, site_codes=codes,
                             chunk_size=chunk_size))
    study_notes = reader.trial_notes(as_of=log.as_of)
    counts = ExportCounts()
    if log.format == ExportFormat.ODM:
        site_info = [s for s in reader.sites() if s.code in codes]
        meta = study_metadata(protocol, include_allocation=include)
        writer = OdmWriter(meta, users=reader.users(), sites=site_info,
                           file_oid=log.file_oid, created_at=log.started_at, as_of=log.as_of,
                           description=f"{protocol.identifiers.acronym} "
                                       f"({protocol.identifiers.registry_id}): complete "
                                       "trial record with audit trail and signatures. "
                                       f"{meta.allocation_statement}",
                           source_version=__version__)
        writer.counts = counts
        chunks: Iterator[str] = writer.chunks(subjects, study_notes)
    else:
        chunks = _csv_chunks(protocol, subjects, counts, study_notes, log.as_of, include)
    digest = hashlib.sha256()
    size = 0
    for text in chunks:
        data = text.encode("utf-8")
        digest.update(data)
        size += len(data)
        yield data
    _finish(log, digest.hexdigest(), size, counts)


def _finish(log: ExportLog, sha256: str, size: int, counts: ExportCounts) -> None:
    log.finished_at = utcnow()
    log.sha256, log.size_bytes = sha256, size
    for name, value in counts.to_dict().items():
        setattr(log, name, value)
    log._history_user = log.user  # type: ignore[attr-defined]
    log._change_reason = "export completed"  # type: ignore[attr-defined]
    log.save()
