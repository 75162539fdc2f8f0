"""`trialdesk randlist import` loads a sealed list only against its published commitment,
and only for the unblinded statistician or an administrator (randlist.manage): the list
reveals the allocation sequence, which the blinded trial statistician must not see."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.web.conftest import member
from trialdesk.cli import app
from trialdesk.randomization import generate_list
from trialdesk.web.randomization.models import AllocationSlot, RandomizationList

pytestmark = pytest.mark.django_db


def test_import_checks_the_commitment_and_loads_every_slot(tmp_path, rumcess, alice, nrch):
    member(alice, "dmc_statistician")
    alist = generate_list(rumcess, seed="cli", size_per_stratum=6)
    path = tmp_path / "list.csv"
    path.write_text(alist.to_csv(), encoding="utf-8")
    runner = CliRunner()
    wrong = runner.invoke(app, ["randlist", "import", str(path), "--commitment", "0" * 64,
                                "--username", "alice"])
    assert wrong.exit_code == 1 and "COMMITMENT_MISMATCH" in wrong.output
    assert not RandomizationList.objects.exists()
    ok = runner.invoke(app, ["randlist", "import", str(path), "--commitment",
                             alist.commitment(), "--username", "alice"])
    assert ok.exit_code == 0, ok.output
    assert AllocationSlot.objects.count() == len(alist.entries)


def test_import_names_an_unknown_account(tmp_path, rumcess, nrch):
    alist = generate_list(rumcess, seed="cli", size_per_stratum=2)
    path = tmp_path / "list.csv"
    path.write_text(alist.to_csv(), encoding="utf-8")
    result = CliRunner().invoke(app, ["randlist", "import", str(path), "--commitment",
                                      alist.commitment(), "--username", "nobody"])
    assert result.exit_code == 3 and "No account 'nobody'" in result.output


@pytest.mark.parametrize("role", ["statistician", "coordinator", None])
def test_the_blinded_trial_statistician_may_not_load_the_list(role, tmp_path, rumcess, alice,
                                                              nrch):
    if role is not None:
        member(alice, role, nrch if role == "coordinator" else None)
    alist = generate_list(rumcess, seed="cli", size_per_stratum=2)
    path = tmp_path / "list.csv"
    path.write_text(alist.to_csv(), encoding="utf-8")
    result = CliRunner().invoke(app, ["randlist", "import", str(path), "--commitment",
                                      alist.commitment(), "--username", "alice"])
    assert result.exit_code == 3 and "randlist.manage" in result.output
    assert not RandomizationList.objects.exists()
