"""Interoperability: FHIR R4 and MIMIC-IV extracts → one normalized clinical event stream.

Pure domain code (no Django): :mod:`~trialdesk.interop.events` defines the stream and
the ingest report, :mod:`~trialdesk.interop.fhir` reads FHIR R4 JSON/NDJSON,
:mod:`~trialdesk.interop.mimic` reads MIMIC-IV-layout folders.
"""
