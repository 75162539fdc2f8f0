"""Pre-screening: find septic-shock-with-neutropenia candidates in ICU data as it arrives.

Pure domain code: :mod:`~trialdesk.prescreen.config` (rules from the protocol),
:mod:`~trialdesk.prescreen.detector` (per-patient assessment, incremental monitor),
:mod:`~trialdesk.prescreen.feasibility` (the same rules as one DuckDB query over
MIMIC-IV-layout extracts), :mod:`~trialdesk.prescreen.batch_sofa` (vectorized SOFA).
"""
