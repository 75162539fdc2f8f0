"""Stratum keys: canonical, in stratify_by order, refusing unknown or missing levels."""

from __future__ import annotations

import pytest

from tests.randomization.designs import redesign
from trialdesk.errors import InputRejected, UnknownStratum
from trialdesk.randomization import (
    all_strata,
    levels_from_record,
    stratum_key,
    stratum_levels,
)


def test_key_is_factor_equals_level(rumcess):
    key = stratum_key(rumcess, {"neutropenia_cause": "post_chemotherapy"})
    assert key == "neutropenia_cause=post_chemotherapy"


def test_factors_follow_stratify_by_order_whatever_the_mapping_order(threearm):
    key = stratum_key(threearm, {"sex_factor": "male", "cause": "chemo", "extra": "ignored"})
    assert key == "cause=chemo|sex_factor=male"


def test_unstratified_protocol_has_the_single_stratum_all(rumcess):
    plain = redesign(rumcess, stratify_by=())
    assert stratum_key(plain, {}) == "all"
    assert all_strata(plain) == ["all"]


def test_all_strata_is_the_cartesian_product(threearm, rumcess):
    assert all_strata(threearm) == ["cause=chemo|sex_factor=female", "cause=chemo|sex_factor=male",
                                    "cause=other|sex_factor=female", "cause=other|sex_factor=male"]
    assert len(all_strata(rumcess)) == 4


def test_unknown_level_is_refused_with_the_valid_levels(rumcess):
    with pytest.raises(UnknownStratum) as caught:
        stratum_key(rumcess, {"neutropenia_cause": "chemo"})
    err = caught.value
    assert isinstance(err, InputRejected) and err.code == "UNKNOWN_STRATUM"
    assert err.field == "neutropenia_cause"
    for level in ("post_chemotherapy", "drug_induced_non_chemotherapy", "aplastic_anemia",
                  "other"):
        assert level in err.message
    assert "'chemo' is not a level" in err.message


def test_missing_factor_is_refused_naming_it(threearm):
    with pytest.raises(UnknownStratum, match=r"sex_factor.*missing.*female, male"):
        stratum_key(threearm, {"cause": "chemo"})


def test_stratum_levels_inverts_the_key(threearm):
    for key in all_strata(threearm):
        assert stratum_key(threearm, stratum_levels(threearm, key)) == key
    with pytest.raises(UnknownStratum):
        stratum_levels(threearm, "cause=chemo")


def test_levels_are_read_from_the_screening_record_by_field(threearm):
    levels = levels_from_record(threearm, {"cause": "other", "sex": "female", "anc": 3})
    assert levels == {"cause": "other", "sex_factor": "female"}
    assert levels_from_record(threearm, {"cause": "other", "sex": None}) == {"cause": "other"}
