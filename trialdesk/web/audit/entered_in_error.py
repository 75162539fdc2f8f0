"""'Entered in error': retiring a patient's record without deleting it.

A record entered by mistake (wrong patient, duplicate, a form for a day that did not
happen) is never deleted: it is *marked* entered in error with a mandatory reason. The
mark is an ordinary audited change (the history row carries the user, the time and
``entered in error: <reason>``). Marked records leave every active list, schedule,
safety obligation and the analysis export (``trialdesk.web.reports.export`` skips any
record whose ``entered_in_error`` is true) but stay in the audit trail and on each app's
"show entered in error" view. A mark is final: a record entered in error is re-entered
as a new record.

:class:`EnteredInError` is the abstract model the adverse event and the casebook form
share: the two fields, and ``objects.active()`` / ``objects.entered_in_error()``.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from trialdesk.errors import InputRejected

#: longest reason kept on the record (the history row keeps it too)
REASON_MAX_LENGTH = 300


class EnteredInErrorQuerySet(models.QuerySet):
    def active(self) -> EnteredInErrorQuerySet:
        """Records in use: not marked entered in error."""
        return self.filter(entered_in_error=False)

    def entered_in_error(self) -> EnteredInErrorQuerySet:
        """Records retired as entered in error (kept, shown only on request)."""
        return self.filter(entered_in_error=True)


class EnteredInError(models.Model):
    """Fields of a record that can be retired as entered in error (see the module doc)."""

    entered_in_error = models.BooleanField(
        default=False, help_text="retired: kept for the audit trail, left out everywhere else")
    entered_in_error_reason = models.CharField(max_length=REASON_MAX_LENGTH, blank=True)

    objects = EnteredInErrorQuerySet.as_manager()

    class Meta:
        abstract = True


def clean_reason(reason: Any, what: str) -> str:
    """The stripped reason, or :class:`InputRejected` naming ``what`` (e.g. 'adverse event')."""
    text = str(reason or "").strip()
    if not text:
        raise InputRejected(f"Say why the {what} was entered in error (e.g. 'wrong patient', "
                            f"'duplicate of an earlier entry'). Nothing was changed.",
                            field="reason")
    if len(text) > REASON_MAX_LENGTH:
        raise InputRejected(f"The reason is {len(text)} characters long; keep it to "
                            f"{REASON_MAX_LENGTH}.", field="reason")
    return text


def refuse_if_entered_in_error(record: Any, what: str) -> None:
    """A record entered in error is final: refuse any further change to it."""
    if getattr(record, "entered_in_error", False):
        raise InputRejected(f"This {what} was marked entered in error "
                            f"({record.entered_in_error_reason}) and can no longer be "
                            "changed; enter it again as a new record if needed.")


def mark(record: EnteredInError, user: Any, reason: str) -> None:
    """Set the mark on a row already taken ``select_for_update`` in the caller's
    transaction, and save it with the reason in its history."""
    record.entered_in_error = True
    record.entered_in_error_reason = reason
    record._history_user = user  # type: ignore[attr-defined]
    record._change_reason = f"entered in error: {reason}"  # type: ignore[attr-defined]
    record.save()
