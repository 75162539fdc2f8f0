"""Allocation lists: balance of permuted blocks, the ratio, reproducibility, the published
CSV and its commitment, exhaustion, and emergency lists."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialdesk.errors import (
    AllocationError,
    CommitmentMismatch,
    InputRejected,
    ListExhausted,
)
from trialdesk.protocol.schema import RandomizationMethod
from trialdesk.randomization import (
    AllocationList,
    all_strata,
    generate_emergency_lists,
    generate_list,
)

BLOCKS = RandomizationMethod.PERMUTED_BLOCKS
COMPLETE = RandomizationMethod.COMPLETE
MINIMIZATION = RandomizationMethod.MINIMIZATION


def _blocks(entries):
    """Entries grouped by block number, in order."""
    grouped: dict[int, list] = {}
    for e in entries:
        grouped.setdefault(e.block, []).append(e)
    return list(grouped.values())


@settings(max_examples=40, deadline=None)
@given(seed=st.text(min_size=1, max_size=20))
def test_random_block_sizes_balance_exactly_at_every_block_end(rumcess, seed):
    alist = generate_list(rumcess, seed=seed, size_per_stratum=40, block_sizes=(2, 4, 6))
    assert alist.strata == tuple(all_strata(rumcess))
    for stratum in alist.strata:
        entries = alist.entries_for(stratum)
        assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
        counts: Counter[str] = Counter()
        for block in _blocks(entries):
            size = block[0].block_size
            assert size in (2, 4, 6) and len(block) == size  # blocks are never cut
            for e in block:
                counts[e.arm] += 1
                # 1:1 — the difference never exceeds half the block
                assert abs(counts["control"] - counts["msc"]) <= size // 2
            assert counts["control"] == counts["msc"]


def test_list_holds_whole_blocks_and_at_least_the_size_asked(rumcess):
    alist = generate_list(rumcess, seed="s", size_per_stratum=9, block_sizes=(4,))
    for stratum in alist.strata:
        assert len(alist.entries_for(stratum)) == 12


def test_random_block_sizes_all_occur(rumcess):
    alist = generate_list(rumcess, seed="sizes", size_per_stratum=200, block_sizes=(2, 4, 6))
    assert {e.block_size for e in alist.entries} == {2, 4, 6}


def test_ratio_2_1_1_is_exact_at_every_block_end(threearm):
    alist = generate_list(threearm, seed="tri", size_per_stratum=60, method=BLOCKS,
                          block_sizes=(4, 8))
    for stratum in alist.strata:
        counts: Counter[str] = Counter()
        for block in _blocks(alist.entries_for(stratum)):
            size = block[0].block_size
            assert Counter(e.arm for e in block) == {"usual_care": size // 2,
                                                    "low_dose": size // 4,
                                                    "high_dose": size // 4}
            counts.update(e.arm for e in block)
            assert counts["usual_care"] == 2 * counts["low_dose"] == 2 * counts["high_dose"]


def test_block_sizes_must_fit_the_ratio(threearm):
    with pytest.raises(AllocationError, match="multiples of the ratio total 4"):
        generate_list(threearm, seed="x", size_per_stratum=4, method=BLOCKS, block_sizes=(6,))


def test_same_seed_same_list_and_different_seeds_differ(rumcess):
    a = generate_list(rumcess, seed="alpha", size_per_stratum=20)
    assert generate_list(rumcess, seed="alpha", size_per_stratum=20) == a
    assert a.to_csv() == generate_list(rumcess, seed="alpha", size_per_stratum=20).to_csv()
    b = generate_list(rumcess, seed="beta", size_per_stratum=20)
    assert [e.arm for e in a.entries] != [e.arm for e in b.entries]
    c = generate_list(rumcess, seed="alpha", size_per_stratum=20, label="other")
    assert [e.arm for e in a.entries] != [e.arm for e in c.entries]


def test_strata_are_independent(rumcess):
    everything = generate_list(rumcess, seed="ind", size_per_stratum=20)
    stratum = "neutropenia_cause=aplastic_anemia"
    alone = generate_list(rumcess, seed="ind", size_per_stratum=20, strata=[stratum])
    assert alone.entries == everything.entries_for(stratum)
    arms = [[e.arm for e in everything.entries_for(s)] for s in everything.strata]
    assert len({tuple(a) for a in arms}) == len(arms)


def test_seed_is_never_written_only_its_fingerprint(rumcess):
    alist = generate_list(rumcess, seed="very-secret-seed", size_per_stratum=4)
    assert "very-secret-seed" not in alist.to_csv()
    assert len(alist.seed_fingerprint) == 64


def test_csv_round_trips_exactly_and_the_commitment_is_stable(threearm):
    alist = generate_list(threearm, seed="csv", size_per_stratum=8, method=BLOCKS,
                          block_sizes=(4, 8))
    text = alist.to_csv()
    assert text.startswith("#") and "\r" not in text and text.endswith("\n")
    assert "\nstratum,sequence,block,block_size,arm\n" in text
    assert f"# protocol_sha256: {threearm.content_sha256}\n" in text
    back = AllocationList.from_csv(text)
    assert back == alist
    assert back.to_csv() == text
    assert back.commitment() == alist.commitment()
    back.verify(alist.commitment())
    back.verify(alist.commitment().upper())


def test_complete_randomization_lists_round_trip_with_block_zero(rumcess):
    alist = generate_list(rumcess, seed="c", size_per_stratum=5, method=COMPLETE)
    assert {(e.block, e.block_size) for e in alist.entries} == {(0, 0)}
    assert AllocationList.from_csv(alist.to_csv()) == alist


def test_tampering_with_one_row_fails_verification(rumcess):
    alist = generate_list(rumcess, seed="tamper", size_per_stratum=8)
    lines = alist.to_csv().split("\n")
    row = next(i for i, line in enumerate(lines) if line.endswith(",control"))
    lines[row] = lines[row].replace(",control", ",msc")
    tampered = AllocationList.from_csv("\n".join(lines))
    with pytest.raises(CommitmentMismatch) as caught:
        tampered.verify(alist.commitment())
    message = caught.value.message
    assert "the list in use is not the list that was published" in message
    assert alist.commitment() in message and tampered.commitment() in message
    assert caught.value.code == "COMMITMENT_MISMATCH"


def test_malformed_csv_rows_are_refused_naming_the_line(rumcess):
    text = generate_list(rumcess, seed="bad", size_per_stratum=2).to_csv()
    lines = text.split("\n")
    header = lines.index("stratum,sequence,block,block_size,arm")
    broken = [*lines[:header + 2], "neutropenia_cause=other,x,1,2,msc", *lines[header + 2:]]
    with pytest.raises(InputRejected, match=f"line {header + 3}: .*whole numbers"):
        AllocationList.from_csv("\n".join(broken))
    short = [*lines[:header + 1], "neutropenia_cause=other,1,1", *lines[header + 1:]]
    with pytest.raises(InputRejected, match=f"line {header + 2}: expected 5 columns"):
        AllocationList.from_csv("\n".join(short))
    skipped = lines[:header + 1] + lines[header + 2:]  # drops sequence 1 of the first stratum
    with pytest.raises(InputRejected, match=f"line {header + 2}: sequence 2 where 1"):
        AllocationList.from_csv("\n".join(skipped))
    with pytest.raises(InputRejected, match="missing seed_fingerprint"):
        AllocationList.from_csv("\n".join(ln for ln in lines if "seed_fingerprint" not in ln))


def test_entry_past_the_end_is_list_exhausted_and_sends_for_the_statistician(rumcess):
    alist = generate_list(rumcess, seed="short", size_per_stratum=2, block_sizes=(2,))
    stratum = "neutropenia_cause=other"
    assert alist.entry(stratum, 2) == alist.entries_for(stratum)[1]
    with pytest.raises(ListExhausted) as caught:
        alist.entry(stratum, 3)
    message = caught.value.message
    assert "unblinded statistician" in message and "emergency procedure" in message
    assert caught.value.code == "LIST_EXHAUSTED" and isinstance(caught.value, AllocationError)


def test_complete_randomization_frequencies_are_within_4_se_of_the_ratio(threearm):
    draws = 20000
    alist = generate_list(threearm, seed="freq", size_per_stratum=draws, method=COMPLETE,
                          strata=["cause=chemo|sex_factor=male"])
    counts = Counter(e.arm for e in alist.entries)
    for arm, share in {"usual_care": 0.5, "low_dose": 0.25, "high_dose": 0.25}.items():
        se = math.sqrt(share * (1 - share) / draws)
        assert abs(counts[arm] / draws - share) < 4 * se


def test_minimization_is_not_list_based(threearm):
    with pytest.raises(AllocationError, match="not list-based"):
        generate_list(threearm, seed="m", size_per_stratum=4)
    with pytest.raises(AllocationError, match="not list-based"):
        generate_list(threearm, seed="m", size_per_stratum=4, method=MINIMIZATION)


def test_emergency_lists_per_site_for_minimization_use_the_smallest_balanced_block(threearm):
    lists = generate_emergency_lists(threearm, seed="env")
    assert set(lists) == {"berlin", "lisbon"}
    for site, alist in lists.items():
        assert alist.label == f"emergency-{site}" and alist.method is BLOCKS
        assert alist.strata == tuple(all_strata(threearm))
        for stratum in alist.strata:
            entries = alist.entries_for(stratum)
            assert len(entries) == threearm.randomization.emergency_envelopes_per_stratum
            assert Counter(e.arm for e in entries) == {"usual_care": 2, "low_dose": 1,
                                                      "high_dose": 1}
    assert lists["berlin"].entries != lists["lisbon"].entries


def test_emergency_lists_of_a_block_protocol_use_its_blocks(rumcess):
    (only,) = generate_emergency_lists(rumcess, seed="env", per_stratum=6).values()
    assert only.label == "emergency-nrch"
    for stratum in only.strata:
        assert len(only.entries_for(stratum)) >= 6
        assert {e.block_size for e in only.entries_for(stratum)} <= {2, 4}
