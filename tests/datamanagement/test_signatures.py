"""Signature meanings (21 CFR 11.50) and the record digest linking a signature (11.70).

The expected digests are SHA-256 of canonical JSON text written out by hand here, so the
test does not reuse the code's serialisation.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from trialdesk.datamanagement.signatures import (
    SignatureMeaning,
    canonical_json,
    casebook_digest,
    record_digest,
    signature_valid,
)
from trialdesk.errors import InputRejected, NaiveTime


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_meanings_are_those_21_cfr_11_50_names():
    assert {m.value for m in SignatureMeaning} == {"authorship", "review", "approval",
                                                   "responsibility"}
    assert all(m.statement for m in SignatureMeaning)


def test_digest_is_sha256_of_sorted_compact_utf8_json():
    content = {"weight_kg": 70.5, "term": "Fièvre", "day": 1, "ok": True, "note": None}
    expected = '{"day":1,"note":null,"ok":true,"term":"Fièvre","weight_kg":70.5}'
    assert canonical_json(content) == expected
    assert record_digest(content) == sha(expected)


def test_key_order_does_not_matter_and_equal_numbers_give_equal_digests():
    assert record_digest({"a": 1, "b": 2}) == record_digest({"b": 2, "a": 1})
    assert record_digest({"map_mmhg": 70}) == record_digest({"map_mmhg": 70.0})


def test_any_change_of_content_changes_the_digest():
    signed = {"map_mmhg": 65, "lactate_mmol_per_l": 2.1}
    changed = {"map_mmhg": 65, "lactate_mmol_per_l": 2.2}
    assert not signature_valid(record_digest(signed), record_digest(changed))
    assert signature_valid(record_digest(signed), record_digest(dict(signed)))
    assert not signature_valid("", record_digest(signed))


def test_times_are_signed_as_utc_instants():
    msk = datetime(2026, 3, 1, 5, 0, tzinfo=timezone(timedelta(hours=3)))
    utc = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    assert record_digest({"t": msk}) == record_digest({"t": utc}) == \
        sha('{"t":"2026-03-01T02:00:00+00:00"}')


def test_a_naive_time_or_a_non_finite_number_cannot_be_signed():
    with pytest.raises(NaiveTime):
        record_digest({"t": datetime(2026, 3, 1, 2, 0)})
    with pytest.raises(InputRejected):
        record_digest({"x": float("nan")})


def test_casebook_digest_covers_every_form_digest():
    forms = {"casebook.formrecord:1": "a" * 64, "safety.adverseevent:7": "b" * 64}
    expected = sha('{"casebook.formrecord:1":"' + "a" * 64 + '","safety.adverseevent:7":"'
                   + "b" * 64 + '"}')
    assert casebook_digest(forms) == expected
    assert casebook_digest({**forms, "safety.adverseevent:7": "c" * 64}) != expected
