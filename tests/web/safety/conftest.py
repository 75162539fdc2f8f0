"""The safety tests use the same people and patient as the data-management tests."""

from __future__ import annotations

from tests.web.datamgmt.conftest import PASSWORD, dora, ivan, monty, patient

__all__ = ["PASSWORD", "dora", "ivan", "monty", "patient"]
