"""The primary analysis takes its settings from the protocol and states its decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trialdesk.analysis import StatisticalWarning, SubjectsDataset, analyze_primary
from trialdesk.errors import AnalysisError, DatasetError
from trialdesk.protocol import Protocol, load_protocol

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rumcess_published_subjects.csv"
THREEARM = ROOT / "tests" / "protocols" / "threearm.yaml"


def _with_analysis(protocol: Protocol, **changes) -> Protocol:
    return protocol.model_copy(update={"analysis": protocol.analysis.model_copy(
        update=changes)})


@pytest.fixture(scope="module")
def rumcess() -> Protocol:
    return load_protocol()


def test_rumcess_primary_fisher_is_not_significant_two_sided(rumcess):
    """The protocol's Fisher test, two-sided at 0.05: p = 0.0604 → not significant."""
    result = analyze_primary(SubjectsDataset.from_csv(EXAMPLE), rumcess)
    assert (result.day, result.alpha, result.sides, result.primary_test) == \
        (28.0, 0.05, 2, "fisher_exact")
    assert result.conf_level == 0.95
    (decision,) = result.decisions
    assert decision.test.name == "fisher_exact" and decision.test.primary
    assert decision.p_value == pytest.approx(0.0604, abs=5e-5)
    assert decision.significant is False
    assert result.survival.horizon == 28 and result.survival.conf_type == "log"
    assert result.protocol_sha256 == rumcess.content_sha256
    assert result.warnings == ()


@pytest.mark.parametrize(("changes", "test", "p", "significant"), [
    ({"primary_test": "chi_square"}, "chi_square", 0.0253, True),
    ({"primary_test": "chi_square_cc"}, "chi_square_cc", 0.0624, False),
    ({"primary_test": "boschloo"}, "boschloo", 0.0301, True),
    ({"sides": 1, "alpha": 0.025}, "fisher_exact", 0.0302, False),
    ({"sides": 1, "alpha": 0.025, "primary_test": "chi_square"}, "chi_square", 0.0127, True),
])
def test_primary_test_sides_and_alpha_come_from_the_protocol(rumcess, changes, test, p,
                                                              significant):
    result = analyze_primary(SubjectsDataset.from_csv(EXAMPLE), _with_analysis(rumcess,
                                                                               **changes))
    (decision,) = result.decisions
    assert decision.test.name == test and decision.p_value == pytest.approx(p, abs=5e-5)
    assert decision.significant is significant
    assert result.conf_level == 0.95


def test_survival_tests_can_be_primary(rumcess):
    result = analyze_primary(SubjectsDataset.from_csv(EXAMPLE),
                             _with_analysis(rumcess, primary_test="logrank",
                                            km_ci_transform="log-log"))
    (decision,) = result.decisions
    assert decision.test is result.survival.logrank.test and decision.test.primary
    assert result.survival.conf_type == "log-log"
    assert not any(t.primary for c in result.binary.comparisons for t in c.tests)


def test_without_a_protocol_the_defaults_are_day_28_alpha_005_two_sided_fisher():
    result = analyze_primary(SubjectsDataset.from_csv(EXAMPLE))
    assert (result.day, result.alpha, result.sides, result.primary_test) == \
        (28.0, 0.05, 2, "fisher_exact")
    assert result.protocol_id is None and result.dataset.reference_arm == "control"


def test_three_arm_protocol_compares_each_arm_with_the_reference():
    """threearm.yaml: one-sided log-rank at 0.025, 60-day time frame, usual_care first."""
    protocol = load_protocol(THREEARM)
    rows = []
    for arm, deaths in (("high_dose", 2), ("usual_care", 9), ("low_dose", 5)):
        rows += [{"subject_id": f"{arm}{i}", "arm": arm, "time": 5 + 4 * i if i < deaths
                  else 60, "event": int(i < deaths)} for i in range(12)]
    with pytest.warns(StatisticalWarning, match="multiplicity"):
        result = analyze_primary(SubjectsDataset.from_records(rows), protocol)
    assert result.day == 60 and result.sides == 1 and result.alpha == 0.025
    assert [c.treatment.arm for c in result.binary.comparisons] == ["low_dose", "high_dose"]
    assert [d.test.comparison for d in result.decisions] == ["low_dose vs usual_care",
                                                             "high_dose vs usual_care"]
    assert all(d.test.name == "logrank" and d.p_value is not None for d in result.decisions)
    assert result.decisions[1].significant is True
    assert result.survival.logrank.test.df == 2 and not result.survival.logrank.test.primary


def test_dataset_arms_are_checked_against_the_protocol(rumcess):
    ds = SubjectsDataset.from_records([{"subject_id": "1", "arm": "placebo", "time": 3,
                                        "event": 1}])
    with pytest.raises(DatasetError, match="placebo"):
        analyze_primary(ds, rumcess)


def test_a_single_arm_cannot_be_analysed(rumcess):
    ds = SubjectsDataset.from_records([{"subject_id": "1", "arm": "control", "time": 3,
                                        "event": 1}], rumcess)
    with pytest.raises(AnalysisError, match="at least one other arm") as info:
        analyze_primary(ds, rumcess)
    assert info.value.code == "ANALYSIS_ERROR"


def test_result_is_json_and_readable(rumcess):
    result = analyze_primary(SubjectsDataset.from_csv(EXAMPLE), rumcess)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["decisions"][0]["significant"] is False
    assert data["dataset"]["content_sha256"] == result.dataset.content_sha256
    assert data["survival"]["kaplan_meier"][0]["table"][0]["n_risk"] == 15
    text = str(result)
    assert "Fisher exact msc vs control: two-sided p = 0.0604 → not significant" in text
    assert "survival_difference 0.4 (95% CI 0.05035 to 0.6398, newcombe)" in text
