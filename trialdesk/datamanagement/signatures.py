"""Electronic signatures: what a signature means and what exactly it signs.

21 CFR 11.50: a signed record shows the signer's printed name, the date and time of
signing and the meaning of the signature. 21 CFR 11.70: the signature is linked to its
record so it cannot be copied to another. The link is :func:`record_digest`, the SHA-256
of the record's content as canonical JSON (sorted keys, no insignificant white space,
UTF-8, times in UTC): stored with the signature, recomputed on display; if the record
has changed since, the signature shows as invalidated (it signed other content).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from trialdesk.clinical.timeutil import ensure_aware
from trialdesk.errors import InputRejected


class SignatureMeaning(StrEnum):
    """The meanings 21 CFR 11.50(a)(3) names, with the statement shown when signing."""

    AUTHORSHIP = "authorship"
    REVIEW = "review"
    APPROVAL = "approval"
    RESPONSIBILITY = "responsibility"

    @property
    def statement(self) -> str:
        return STATEMENTS[self]


STATEMENTS = {
    SignatureMeaning.AUTHORSHIP: "I am the author of these data.",
    SignatureMeaning.REVIEW: "I have reviewed these data.",
    SignatureMeaning.APPROVAL: "I approve these data.",
    SignatureMeaning.RESPONSIBILITY: "As investigator I take responsibility for these data, "
                                     "which are complete and accurate to my knowledge.",
}


def _canonical(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputRejected(f"{path}: {value} cannot be signed (not a finite number).",
                                field=path)
        return int(value) if value.is_integer() else value
    if isinstance(value, Decimal):
        return _canonical(float(value), path) if value.is_finite() else _canonical(
            float("nan"), path)
    if isinstance(value, datetime):
        return ensure_aware(value, field=path).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_canonical(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True)) \
            if isinstance(value, set | frozenset) else items
    raise InputRejected(f"{path}: a value of type {type(value).__name__} cannot be signed.",
                        field=path)


def canonical_json(content: Mapping[str, Any]) -> str:
    """The canonical text of ``content``: sorted keys, compact separators, times in UTC.

    Numbers that are equal compare equal (70 and 70.0 give the same text); a set is
    sorted; a naive time or a non-finite number is refused.
    """
    return json.dumps(_canonical(content, "record"), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


def record_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``content``, UTF-8 encoded."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def casebook_digest(form_digests: Mapping[str, str]) -> str:
    """One digest for a whole casebook: the digest of {form key: form digest}."""
    return record_digest(dict(form_digests))


def signature_valid(signed_digest: str, current_digest: str) -> bool:
    """A signature holds while the record's content is the content that was signed."""
    return bool(signed_digest) and signed_digest == current_digest
