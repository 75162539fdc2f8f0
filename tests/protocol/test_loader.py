"""Loading protocol files: the shipped RUMCESS protocol, the second test protocol, and
broken files whose errors must name the file, the line and the dotted path.

Broken files are made by editing the text of protocols/rumcess.yaml, and every expected
line number is computed from the edited text, so the tests survive edits of the file.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from trialdesk.errors import ProtocolError, ProtocolNotFound
from trialdesk.protocol import DEFAULT_PROTOCOL, Protocol, load_protocol, parse_protocol
from trialdesk.protocol.schema import (
    AgeBasis,
    AgeCriterion,
    EventRecordedCriterion,
    FlagCriterion,
    MeasurementCriterion,
    RandomizationMethod,
    WithinHoursCriterion,
)

ROOT = Path(__file__).resolve().parents[2]
RUMCESS = ROOT / "protocols" / "rumcess.yaml"
THREEARM = ROOT / "tests" / "protocols" / "threearm.yaml"
RUMCESS_TEXT = RUMCESS.read_text(encoding="utf-8")

#: "FILE, line N (dotted.path): message" — one validation problem
PROBLEM = re.compile(r"^(?P<file>.+), line (?P<line>\d+) \((?P<path>[^)]*)\): (?P<msg>.+)$")


def line_of(text: str, needle: str, start: int = 1) -> int:
    """1-based number of the first line at or after ``start`` that contains ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if number >= start and needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")


def broken(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    """Write rumcess.yaml with ``old`` (which must occur once) replaced by ``new``."""
    assert RUMCESS_TEXT.count(old) == 1, f"{old!r} must occur exactly once"
    text = RUMCESS_TEXT.replace(old, new)
    path = tmp_path / "broken-rumcess.yaml"
    path.write_bytes(text.encode("utf-8"))
    return path, text


def problems(path: Path) -> list[dict[str, str]]:
    """Load ``path``, expect a ProtocolError, and return its problems as dicts."""
    with pytest.raises(ProtocolError) as exc:
        load_protocol(path)
    message = str(exc.value)
    head, *rest = message.splitlines()
    assert head == f"{path}: the protocol file is not valid:"
    found = []
    for line in rest:
        match = PROBLEM.match(line)
        assert match, f"not a 'FILE, line N (path): message' line: {line!r}"
        assert match["file"] == str(path)
        found.append(match.groupdict())
    assert found
    return found


def only_problem(path: Path) -> dict[str, str]:
    (problem,) = problems(path)
    return problem


# --- both protocols load ---------------------------------------------------------------


@pytest.fixture(scope="module")
def rumcess() -> Protocol:
    return load_protocol(RUMCESS)


@pytest.fixture(scope="module")
def threearm() -> Protocol:
    return load_protocol(THREEARM)


def test_default_protocol_is_rumcess():
    assert DEFAULT_PROTOCOL.resolve() == RUMCESS.resolve()
    assert load_protocol().protocol_id == "rumcess"


@pytest.mark.parametrize("path", [RUMCESS, THREEARM], ids=["rumcess", "threearm"])
def test_content_sha256_is_the_hash_of_the_file_bytes(path):
    protocol = load_protocol(path)
    assert protocol.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert protocol.source_path == str(path)


def test_one_changed_byte_changes_the_hash(tmp_path, rumcess):
    path = tmp_path / "copy.yaml"
    path.write_bytes(RUMCESS.read_bytes() + b"\n")
    assert load_protocol(path).content_sha256 != rumcess.content_sha256


def test_a_file_with_a_byte_order_mark_is_hashed_as_stored(tmp_path, rumcess):
    raw = b"\xef\xbb\xbf" + RUMCESS.read_bytes()
    path = tmp_path / "bom.yaml"
    path.write_bytes(raw)
    protocol = load_protocol(path)
    assert protocol.content_sha256 == hashlib.sha256(raw).hexdigest()
    assert protocol.content_sha256 != rumcess.content_sha256
    assert protocol.identifiers.registry_id == "NCT01849237"


def test_parse_protocol_hashes_the_utf8_text(rumcess):
    protocol = parse_protocol(RUMCESS_TEXT, name="rumcess.yaml")
    assert protocol.content_sha256 == rumcess.content_sha256


# --- RUMCESS registry facts (domain.md §1.1) -----------------------------------------


def test_rumcess_identifiers(rumcess):
    ids = rumcess.identifiers
    assert ids.registry_id == "NCT01849237"
    assert ids.sponsor_protocol_id == "RuMCeSS"
    assert ids.acronym == "RUMCESS"
    assert ids.planned_enrolment == 30
    assert ids.phase == "Phase 1/Phase 2"
    assert ids.start_date == "2012-12"
    assert "Galstyan" in ids.principal_investigator
    assert [s.timezone for s in rumcess.sites] == ["Europe/Moscow"]


def test_rumcess_has_two_arms_randomized_1_to_1(rumcess):
    assert rumcess.arm_ids == ("control", "msc")
    assert rumcess.arm("control").role == "control"
    assert rumcess.arm("msc").role == "experimental"
    assert rumcess.randomization.ratio == {"control": 1, "msc": 1}
    assert rumcess.randomization.method is RandomizationMethod.PERMUTED_BLOCKS
    assert all(size % 2 == 0 for size in rumcess.randomization.block_sizes)


def test_rumcess_has_5_inclusion_and_4_exclusion_criteria(rumcess):
    elig = rumcess.eligibility
    assert [c.id for c in elig.inclusion] == ["I1", "I2", "I3", "I4", "I5"]
    assert [c.id for c in elig.exclusion] == ["E1", "E2", "E3", "E4"]
    assert elig.age_basis is AgeBasis.COMPLETED_YEARS
    i1, i2, i3, i4, i5 = elig.inclusion
    assert isinstance(i1, EventRecordedCriterion) and i1.negated_by == "septic_shock"
    assert isinstance(i2, WithinHoursCriterion) and i2.hours == 10
    assert isinstance(i3, MeasurementCriterion)
    assert (i3.op, i3.value, i3.unit) == ("<=", 1.0, "10^9/L")
    assert isinstance(i4, AgeCriterion) and (i4.op, i4.years) == (">=", 17)
    assert isinstance(i5, FlagCriterion) and (i5.field, i5.equals) == ("consent_signed", True)
    e1, e2, e3, e4 = elig.exclusion
    assert isinstance(e1, FlagCriterion) and e1.field == "chemoresistant_oncohematological"
    assert isinstance(e2, FlagCriterion) and (e2.field, e2.equals) == ("consent_signed", False)
    assert isinstance(e3, AgeCriterion) and (e3.op, e3.years) == (">", 75)
    assert isinstance(e4, FlagCriterion) and e4.not_applicable_when == {"sex": "male"}


def test_rumcess_intervention_is_1_to_2_million_msc_per_kg_within_10_hours(rumcess):
    iv = rumcess.intervention
    assert iv.arm == "msc"
    assert (iv.dose.min_cells_per_kg, iv.dose.max_cells_per_kg) == (1e6, 2e6)
    assert iv.dose.target_cells_per_kg == 1e6
    assert iv.dose.per == "day"
    assert iv.deadline_hours_after_onset == 10
    assert rumcess.enrolment_deadline_hours == 10
    assert rumcess.onset.field == "septic_shock_onset"
    assert rumcess.onset.definition == "ssc2012"


def test_rumcess_schedule_covers_days_0_to_28_and_90(rumcess):
    assert tuple(rumcess.schedule_by_day()) == (*range(29), 90)


def test_rumcess_primary_outcome_is_28_day_mortality(rumcess):
    (primary,) = rumcess.outcomes.primary
    assert (primary.id, primary.type, primary.timeframe_days) == ("mortality_d28", "binary", 28)


def test_rumcess_secondary_outcomes_include_the_registry_inflammation_markers(rumcess):
    secondary = {o.id: o for o in rumcess.outcomes.secondary}
    assert {"il6", "il10", "crp", "procalcitonin", "sofa"} <= set(secondary)
    assert secondary["il6"].unit == secondary["il10"].unit == "pg/mL"
    assert secondary["crp"].unit == "mg/L"
    assert secondary["procalcitonin"].unit == "ng/mL"


def test_threearm_is_three_arms_2_1_1_by_minimization(threearm):
    assert threearm.randomization.ratio == {"usual_care": 2, "low_dose": 1, "high_dose": 1}
    assert threearm.randomization.method is RandomizationMethod.MINIMIZATION
    assert threearm.eligibility.age_basis is AgeBasis.EXACT
    assert threearm.enrolment_deadline_hours == 6
    assert [s.id for s in threearm.sites] == ["berlin", "lisbon"]


# --- broken files: FILE, line N (dotted.path): message ------------------------------


def test_wrong_type_names_file_line_and_path(tmp_path):
    path, text = broken(tmp_path, "      hours: 10\n", '      hours: "ten"\n')
    problem = only_problem(path)
    assert problem["path"] == "eligibility.inclusion.1.hours"
    assert int(problem["line"]) == line_of(text, 'hours: "ten"')
    assert "valid number" in problem["msg"]


def test_unknown_key_from_a_typo_is_reported_not_ignored(tmp_path):
    path, text = broken(tmp_path, "      negated_by: septic_shock\n",
                        "      negated_bye: septic_shock\n")
    problem = only_problem(path)
    assert problem["path"] == "eligibility.inclusion.0.negated_bye"
    assert int(problem["line"]) == line_of(text, "negated_bye:")
    assert "Extra inputs are not permitted" in problem["msg"]


def test_missing_required_key_points_at_the_mapping_that_lacks_it(tmp_path):
    path, text = broken(tmp_path, "  acronym: RUMCESS\n", "")
    problem = only_problem(path)
    assert problem["path"] == "identifiers.acronym"
    # a missing key has no line of its own: the first line of the identifiers block
    assert int(problem["line"]) == line_of(text, "identifiers:") + 1
    assert problem["msg"] == "Field required"


def test_ratio_naming_an_unknown_arm(tmp_path):
    path, text = broken(tmp_path, "ratio: {control: 1, msc: 1}", "ratio: {control: 1, mcs: 1}")
    problem = only_problem(path)
    assert problem["path"] == "randomization.ratio"
    assert int(problem["line"]) == line_of(text, "ratio: {control: 1, mcs: 1}")
    assert "mcs" in problem["msg"] and "control, msc" in problem["msg"]


def test_criterion_naming_an_unknown_field(tmp_path):
    path, text = broken(tmp_path, "      field: neutrophils\n", "      field: neutrophil\n")
    problem = only_problem(path)
    assert problem["path"] == "eligibility.inclusion.2"
    assert int(problem["line"]) == line_of(text, "- id: I3")
    assert "criterion I3" in problem["msg"]
    assert "'neutrophil' is not a screening field" in problem["msg"]


def test_criterion_unit_that_is_not_a_unit_of_its_measure(tmp_path):
    path, text = broken(tmp_path, "      value: 1.0\n      unit: 10^9/L\n",
                        "      value: 1.0\n      unit: mmol/L\n")
    problem = only_problem(path)
    assert problem["path"] == "eligibility.inclusion.2"
    assert int(problem["line"]) == line_of(text, "- id: I3")
    assert "unit 'mmol/L' is not a unit of neutrophils" in problem["msg"]


def test_block_size_not_a_multiple_of_the_ratio_total(tmp_path):
    path, text = broken(tmp_path, "block_sizes: [2, 4]", "block_sizes: [2, 3]")
    problem = only_problem(path)
    assert problem["path"] == "randomization"
    # the randomization mapping starts on the line after "randomization:"
    assert int(problem["line"]) == line_of(text, "randomization:") + 1
    assert "block sizes [3]" in problem["msg"] and "ratio total 2" in problem["msg"]


def test_schedule_form_naming_an_unknown_arm(tmp_path):
    path, text = broken(tmp_path, "      arms: [msc]\n", "      arms: [mscc]\n")
    problem = only_problem(path)
    assert problem["path"] == "schedule.assessments"
    assert int(problem["line"]) == line_of(text, "  assessments:") + 1
    assert "'mscc'" in problem["msg"]


def test_dose_range_out_of_order(tmp_path):
    path, text = broken(tmp_path, "target_cells_per_kg: 1.0e6", "target_cells_per_kg: 3.0e6")
    problem = only_problem(path)
    assert problem["path"] == "intervention.dose"
    assert int(problem["line"]) == line_of(text, "target_cells_per_kg:")


def test_unknown_time_zone(tmp_path):
    path, text = broken(tmp_path, "Europe/Moscow", "Europe/Moskva")
    problem = only_problem(path)  # and no echo such as "sites: at least 1 item … not 0"
    assert problem["path"] == "sites.0.timezone"
    assert int(problem["line"]) == line_of(text, "timezone: Europe/Moskva")
    assert "unknown time zone 'Europe/Moskva'" in problem["msg"]


def test_a_bad_entry_in_a_minimum_length_list_is_reported_once(tmp_path):
    path, text = broken(tmp_path, "    role: experimental\n", "    role: experimentel\n")
    problem = only_problem(path)  # not also "arms: at least 2 items … not 1"
    assert problem["path"] == "arms.1.role"
    assert int(problem["line"]) == line_of(text, "role: experimentel")


def test_every_problem_in_a_file_is_reported(tmp_path):
    path, text = broken(tmp_path, "      hours: 10\n", '      hours: "ten"\n')
    text = text.replace("Europe/Moscow", "Europe/Moskva")
    path.write_bytes(text.encode("utf-8"))
    found = {p["path"]: int(p["line"]) for p in problems(path)}
    assert found == {
        "sites.0.timezone": line_of(text, "Europe/Moskva"),
        "eligibility.inclusion.1.hours": line_of(text, 'hours: "ten"'),
    }


def test_duplicate_yaml_key_is_refused_with_both_lines(tmp_path):
    path, text = broken(tmp_path, "      hours: 10\n", "      hours: 10\n      hours: 12\n")
    with pytest.raises(ProtocolError) as exc:
        load_protocol(path)
    first, second = line_of(text, "hours: 10"), line_of(text, "hours: 12")
    assert str(exc.value) == (f"{path}, line {second}: not valid YAML: duplicate key 'hours' "
                              f"(first on line {first})")


def test_invalid_yaml_syntax_names_the_line(tmp_path):
    path, text = broken(tmp_path, "  method: permuted_blocks\n",
                        "  method: permuted_blocks: oops\n")
    with pytest.raises(ProtocolError) as exc:
        load_protocol(path)
    line = line_of(text, "permuted_blocks: oops")
    assert str(exc.value).startswith(f"{path}, line {line}: not valid YAML:")


def test_unclosed_flow_mapping_is_invalid_yaml(tmp_path):
    path, _ = broken(tmp_path, "ratio: {control: 1, msc: 1}", "ratio: {control: 1, msc: 1")
    with pytest.raises(ProtocolError) as exc:
        load_protocol(path)
    assert re.match(rf"{re.escape(str(path))}, line \d+: not valid YAML", str(exc.value))


def test_top_level_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match="must be a YAML mapping"):
        load_protocol(path)


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(RUMCESS.read_bytes() + b"# caf\xe9\n")
    with pytest.raises(ProtocolError, match="not UTF-8"):
        load_protocol(path)


def test_missing_file_raises_protocol_not_found(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ProtocolNotFound) as exc:
        load_protocol(path)
    assert str(path) in str(exc.value)
    assert exc.value.code == "PROTOCOL_NOT_FOUND"
    assert isinstance(exc.value, ProtocolError)


def test_protocol_error_code(tmp_path):
    path, _ = broken(tmp_path, "Europe/Moscow", "Europe/Moskva")
    with pytest.raises(ProtocolError) as exc:
        load_protocol(path)
    assert exc.value.code == "PROTOCOL_INVALID"
