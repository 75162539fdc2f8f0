"""Live pre-screening: FHIR messages in, the candidate board out (issue 8)."""
