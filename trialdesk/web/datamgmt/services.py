"""Data-management use cases: queries, source-data verification, electronic signatures.

Permissions are checked by the callers (pages, API) with ``check_site``; these services
enforce the workflow (the query state machine of the domain core), the lock, the
password re-entry for signatures (wrong passwords count toward the login lockout), and
record who did what, when, and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import models, transaction

from trialdesk.clinical.timeutil import utcnow
from trialdesk.datamanagement.queries import (
    QueryAction,
    QueryActor,
    QueryState,
    next_state,
)
from trialdesk.datamanagement.signatures import SignatureMeaning, signature_valid
from trialdesk.errors import InputRejected, SignatureRefused
from trialdesk.web.accounts.models import AccessEvent
from trialdesk.web.accounts.services import clear_failures, lockout_until, record_failure
from trialdesk.web.datamgmt.locks import hold_unlocked
from trialdesk.web.datamgmt.models import (
    Query,
    QueryMessage,
    SdvMark,
    Signature,
    SignatureRefusal,
    SignatureScope,
)
from trialdesk.web.datamgmt.targets import (
    allocation_of,
    content_type_of,
    digest_of,
    field_names,
)
from trialdesk.web.randomization.models import Allocation

# --- queries ---------------------------------------------------------------------------


def raise_query(target: models.Model, user: Any, *, text: str, field: str = "",
                now: datetime | None = None) -> Query:
    """Open a query on a record (or on one of its fields) with the question ``text``."""
    now = now or utcnow()
    if isinstance(target, Allocation):
        raise InputRejected("Raise a query on a record of the patient, not on the casebook.",
                            field="target")
    if not (text or "").strip():
        raise InputRejected("Write the question (what looks wrong and what to check).",
                            field="text")
    field = (field or "").strip()
    if field and field not in field_names(target):
        known = ", ".join(sorted(field_names(target)))
        raise InputRejected(f"'{field}' is not a field of this record; fields: {known}.",
                            field="field")
    with transaction.atomic():
        query = Query(allocation=allocation_of(target), content_type=content_type_of(target),
                      object_id=target.pk, field=field, state=QueryState.OPEN.value,
                      raised_by=user, raised_at=now, updated_at=now)
        query._history_user = user
        query._change_reason = "query raised"
        query.save()
        _message(query, user, "raise", text, now)
    return query


def _message(query: Query, user: Any, action: str, text: str, now: datetime) -> QueryMessage:
    msg = QueryMessage(query=query, action=action, text=text.strip(),
                       state_after=query.state, author=user, at=now)
    msg._history_user = user
    msg.save()
    return msg


def _step(query: Query, user: Any, action: QueryAction, actor: QueryActor, text: str,
          now: datetime | None, *, needs_unlocked: bool = False) -> Query:
    now = now or utcnow()
    with transaction.atomic():
        if needs_unlocked:
            hold_unlocked(query.allocation)
        query = Query.objects.select_for_update().get(pk=query.pk)
        query.state = next_state(query.state, action, actor, message=text).value
        query.updated_at = now
        query._history_user = user
        query._change_reason = f"{action.value}: {text.strip()}"[:100]
        query.save()
        _message(query, user, action.value, text, now)
    return query


def answer_query(query: Query, user: Any, *, text: str, now: datetime | None = None) -> Query:
    """The site answers an open or reopened query (refused when the patient is locked)."""
    return _step(query, user, QueryAction.ANSWER, QueryActor.SITE, text, now,
                 needs_unlocked=True)


def close_query(query: Query, user: Any, *, text: str, now: datetime | None = None) -> Query:
    """The data manager or monitor closes an answered query."""
    return _step(query, user, QueryAction.CLOSE, QueryActor.REVIEWER, text, now)


def reopen_query(query: Query, user: Any, *, text: str, now: datetime | None = None) -> Query:
    """The data manager or monitor reopens an answered or closed query."""
    return _step(query, user, QueryAction.REOPEN, QueryActor.REVIEWER, text, now)


def withdraw_query(query: Query, user: Any, *, text: str,
                   now: datetime | None = None) -> Query:
    """The data manager or monitor withdraws an open query raised in error (``text``: why).

    Final: the query stays with its thread, but nobody answers, closes or reopens it.
    """
    return _step(query, user, QueryAction.WITHDRAW, QueryActor.REVIEWER, text, now)


def queries_on(target: models.Model) -> models.QuerySet[Query]:
    return Query.objects.filter(content_type=content_type_of(target), object_id=target.pk)


# --- source-data verification ------------------------------------------------------------


def mark_sdv(target: models.Model, user: Any, *, verified: bool = True, note: str = "",
             now: datetime | None = None) -> SdvMark:
    """Mark (or unmark) a record as verified against source; the digest is kept, so a
    later change of the record shows as 'changed since verification'."""
    now = now or utcnow()
    if isinstance(target, Allocation):
        raise InputRejected("Verify the patient's records one by one.", field="target")
    ct = content_type_of(target)
    with transaction.atomic():
        mark = SdvMark.objects.select_for_update().filter(content_type=ct,
                                                          object_id=target.pk).first()
        if mark is None:
            mark = SdvMark(allocation=allocation_of(target), content_type=ct,
                           object_id=target.pk)
        elif not verified and not (note or "").strip():
            raise InputRejected("Say why the verification is withdrawn.", field="note")
        mark.verified = verified
        mark.digest = digest_of(target) if verified else ""
        mark.changed_by = user
        mark.changed_at = now
        mark.note = (note or "").strip()[:300]
        mark._history_user = user
        mark._change_reason = ("source data verified" if verified
                               else f"verification withdrawn: {mark.note}")
        mark.save()
    return mark


@dataclass(frozen=True)
class SdvView:
    mark: SdvMark | None

    @property
    def verified(self) -> bool:
        return self.mark is not None and self.mark.verified

    def changed_since(self, target: models.Model) -> bool:
        return self.verified and self.mark is not None and \
            self.mark.digest != digest_of(target)


def sdv_of(target: models.Model) -> SdvView:
    return SdvView(SdvMark.objects.filter(content_type=content_type_of(target),
                                          object_id=target.pk).first())


# --- electronic signatures ----------------------------------------------------------------


def printed_name(user: Any) -> str:
    return (user.get_full_name() or "").strip() or user.get_username()


def sign(target: models.Model, user: Any, *, password: str, meaning: str,
         now: datetime | None = None, ip: str | None = None) -> Signature:
    """Sign a record, or a whole casebook when ``target`` is the patient's Allocation.

    The signer re-enters the password (21 CFR 11.200: both components at each signing
    here); a wrong password is refused with :class:`SignatureRefused` and the attempt is
    kept (:class:`SignatureRefusal`). Wrong passwords count toward the login lockout
    (11.300(d)): at the threshold the account is locked as after failed logins, and
    while it is locked every signature is refused, even with the right password. A
    correct password resets the count, as a login does. The signature records the
    printed name, the UTC time, the meaning and the digest of the content signed
    (11.50, 11.70).
    """
    now = now or utcnow()
    scope = SignatureScope.CASEBOOK if isinstance(target, Allocation) else SignatureScope.RECORD
    try:
        meaning_ = SignatureMeaning(meaning)
    except ValueError:
        allowed = ", ".join(m.value for m in SignatureMeaning)
        raise SignatureRefused(f"Meaning '{meaning}' is not one of {allowed}.",
                               field="meaning") from None
    ct = content_type_of(target)
    allocation = allocation_of(target)
    username = user.get_username()

    def refuse(reason: str) -> None:
        refusal = SignatureRefusal(user=user, allocation=allocation, content_type=ct,
                                   object_id=target.pk, scope=scope.value, reason=reason,
                                   at=now)
        refusal._history_user = user
        refusal._change_reason = f"signature refused: {reason}"
        refusal.save()

    until = lockout_until(username)
    if until is not None:
        refuse("account locked")
        raise SignatureRefused("Not signed: " + _locked_message(until), field="password")
    if not password or not user.check_password(password):
        refuse("wrong password")
        until = record_failure(username, ip, kind=AccessEvent.Kind.SIGNATURE_FAILED)
        if until is not None:
            raise SignatureRefused("The password is not correct, too many times: not "
                                   "signed, and " + _locked_message(until), field="password")
        raise SignatureRefused("The password is not correct: the record was not signed. "
                               "Re-enter your own password to sign.", field="password")
    clear_failures(username)
    with transaction.atomic():
        signature = Signature(allocation=allocation, content_type=ct, object_id=target.pk,
                              scope=scope.value, signer=user, printed_name=printed_name(user),
                              meaning=meaning_.value, signed_at=now, digest=digest_of(target))
        signature._history_user = user
        signature._change_reason = f"signed ({meaning_.value})"
        signature.save()
    return signature


def _locked_message(until: datetime) -> str:
    return (f"the account is locked after repeated wrong passwords until "
            f"{until.astimezone(UTC):%H:%M} UTC. Try again then, or ask the trial "
            "administrator to unlock it.")


@dataclass(frozen=True)
class SignatureView:
    """A signature as displayed: valid while the record is what was signed."""

    signature: Signature
    valid: bool

    @property
    def statement(self) -> str:
        return SignatureMeaning(self.signature.meaning).statement


def signatures_of(target: models.Model) -> list[SignatureView]:
    current = digest_of(target)
    return [SignatureView(s, signature_valid(s.digest, current))
            for s in Signature.objects.filter(content_type=content_type_of(target),
                                              object_id=target.pk).select_related("signer")]
