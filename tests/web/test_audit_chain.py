"""The audit trail cannot be edited unnoticed: the hash chain catches changes made
outside the app, and `trialdesk audit verify` reports them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from typer.testing import CliRunner

from tests.web.conftest import eligible_record, make_screening
from trialdesk.cli import app
from trialdesk.web.audit.chain import verify_chain
from trialdesk.web.screening.services import update_screening

pytestmark = pytest.mark.django_db


@pytest.fixture
def corrected(rumcess, alice, nrch):
    screening = make_screening(nrch, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    update_screening(rumcess, screening, alice,
                     {**screening.record, "neutrophils": {"value": 0.4, "unit": "10^9/L"}},
                     "lab result corrected")
    return screening


def test_every_audit_row_is_chained_and_the_chain_verifies(corrected):
    report = verify_chain()
    assert report.ok, report
    assert report.links >= 2


def test_times_given_with_a_local_offset_still_verify(alice, nrch):
    """The database hands datetimes back in UTC: a row saved with a Moscow offset must
    digest alike when the chain is verified (regression: randomize(at=+03:00))."""
    moscow = dt.timezone(dt.timedelta(hours=3))
    onset = dt.datetime.now(moscow) - dt.timedelta(hours=2)
    screening = make_screening(nrch, alice, eligible_record(onset))
    screening.onset_utc = onset  # given with +03:00, stored and read back in UTC
    screening.save()
    report = verify_chain()
    assert report.ok, report


def _table(model) -> str:
    return model.history.model._meta.db_table


def test_a_history_row_edited_in_the_database_breaks_the_chain(corrected):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {_table(type(corrected))} SET history_change_reason = %s "
                       "WHERE history_change_reason = %s", ["nothing", "lab result corrected"])
    report = verify_chain()
    assert not report.ok
    assert any("changed after it was written" in p for p in report.problems)


def test_a_deleted_history_row_is_reported(corrected):
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_table(type(corrected))} WHERE history_change_reason = %s",
                       ["lab result corrected"])
    assert any("deleted" in p for p in verify_chain().problems)


def test_cli_audit_verify_exits_1_on_tampering(corrected):
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.output
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {_table(type(corrected))} SET screening_number = 'X'")
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "BROKEN" in broken.output


def test_cli_createuser_reads_the_password_from_stdin(nrch, django_user_model):
    result = CliRunner().invoke(app, ["web", "createuser", "--username", "carol", "--role",
                                      "investigator", "--site", "nrch"],
                                input="a long enough passphrase 9\n")
    assert result.exit_code == 0, result.output
    assert django_user_model.objects.get(username="carol").check_password(
        "a long enough passphrase 9")


def test_cli_createuser_refuses_a_weak_password_with_exit_3(nrch):
    result = CliRunner().invoke(app, ["web", "createuser", "--username", "dave", "--role",
                                      "coordinator", "--site", "nrch"], input="123\n")
    assert result.exit_code == 3
    assert "Password refused" in result.output


def test_cli_token_issues_a_working_api_token_for_the_feed_account(nrch):
    from trialdesk.web.api.services import authenticate_key

    created = CliRunner().invoke(app, ["web", "createuser", "--username", "icufeed", "--role",
                                       "integration", "--site", "nrch"],
                                 input="a long enough passphrase 9\n")
    assert created.exit_code == 0, created.output
    result = CliRunner().invoke(app, ["web", "token", "--username", "icufeed",
                                      "--name", "ICU FHIR bridge"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith("td_")
    assert authenticate_key(secret).username == "icufeed"


def test_cli_token_for_an_unknown_account_says_how_to_create_it(nrch):
    result = CliRunner().invoke(app, ["web", "token", "--username", "nobody", "--name", "x"])
    assert result.exit_code == 3
    assert "createuser" in result.output


def test_demo_setup_creates_every_role_and_a_screening_at_each_stage(settings, rumcess):
    from trialdesk.web.demo import setup_demo
    from trialdesk.web.randomization.models import Allocation
    from trialdesk.web.screening.models import Screening

    settings.DEMO = True
    report = setup_demo(rumcess)
    # one person per role signs in with a password; the ICU feed has a token instead
    assert set(report.credentials) == {
        "investigator", "coordinator", "lab", "datamanager", "monitor", "statistician",
        "dmcstatistician", "dmc", "sponsor", "administrator"}
    assert set(report.tokens) == {"integration"}
    assert report.tokens["integration"].startswith("td_")
    assert report.tokens["integration"] in str(report)
    statuses = set(Screening.objects.values_list("status", flat=True))
    assert statuses == {"open", "randomized", "not_enrolled"}
    assert Allocation.objects.count() == 1
    again = setup_demo(rumcess)
    assert not again.credentials and not again.tokens  # shown once only


def test_a_long_reason_for_change_is_kept_whole(rumcess, alice, nrch):
    """Reasons are free text: 300 characters are stored whole (PostgreSQL refused more than
    100 with simple-history's default column)."""
    screening = make_screening(nrch, alice, eligible_record(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    reason = "lab result corrected after the haematology lab re-ran the sample; " * 5
    update_screening(rumcess, screening, alice, dict(screening.record), reason)
    assert screening.history.first().history_change_reason == reason.strip()


def test_the_migrations_match_the_models():
    from io import StringIO

    from django.core.management import call_command
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
