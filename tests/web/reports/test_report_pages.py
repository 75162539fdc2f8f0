"""Reports in the web app and from the command line, built from the database.

The closed (arm-level) report is for the DMC and the unblinded statistician who
prepares it for them; blinded roles (the trial statistician, the data manager, the
sponsor) get 403 on every closed URL. The stored HTML and PDF are served byte for byte
with their SHA-256.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.urls import reverse
from typer.testing import CliRunner

from tests.web.conftest import member
from tests.web.reports.conftest import browser
from trialdesk.analysis.analysis_dataset import AnalysisDataset
from trialdesk.cli import app
from trialdesk.web.reports.models import ReportArtefact

pytestmark = pytest.mark.django_db


@pytest.fixture
def dmc(django_user_model):
    return member(django_user_model.objects.create_user("dana", password="x" * 16), "dmc")


@pytest.fixture
def statistician(django_user_model):
    return member(django_user_model.objects.create_user("stan", password="x" * 16),
                  "statistician")


@pytest.fixture
def unblinded_statistician(django_user_model):
    return member(django_user_model.objects.create_user("ursula", password="x" * 16),
                  "dmc_statistician")


@pytest.mark.parametrize("reader", ["dmc", "unblinded_statistician"])
def test_the_dmc_and_the_unblinded_statistician_generate_and_read_the_closed_report(
        trial, reader, request):
    client = browser(request.getfixturevalue(reader))
    response = client.post(reverse("reports:generate_closed"))
    assert response.status_code == 302
    artefact = ReportArtefact.objects.get()
    assert artefact.version == "closed" and artefact.n_subjects == 3
    page = client.get(reverse("reports:closed_html"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "CLOSED report" in html and artefact.dataset_sha256 in html
    assert page["X-Content-SHA256"] == hashlib.sha256(page.content).hexdigest()
    assert page["X-Dataset-SHA256"] == artefact.dataset_sha256
    assert "Day-28 mortality by arm" in html  # arm-level results are in the closed one
    pdf = client.get(reverse("reports:closed_pdf"))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert hashlib.sha256(pdf.content).hexdigest() == artefact.pdf_sha256
    index = client.get(reverse("reports:index")).content.decode()
    assert 'id="generate-closed"' in index and artefact.dataset_sha256 in index


@pytest.mark.parametrize("role", ["statistician", "data_manager", "sponsor"])
def test_blinded_roles_get_the_open_report_and_403_on_the_closed_one(role, trial, dmc,
                                                                      django_user_model):
    browser(dmc).post(reverse("reports:generate_closed"))
    closed = ReportArtefact.objects.get()
    user = member(django_user_model.objects.create_user(f"blind-{role}"), role)
    client = browser(user)
    for name in ("reports:closed_html", "reports:closed_pdf"):
        assert client.get(reverse(name), {"id": closed.pk}).status_code == 403
    assert client.post(reverse("reports:generate_closed")).status_code == 403
    # the open views never serve a closed artefact, even by its id
    assert client.get(reverse("reports:open_html"), {"id": closed.pk}).status_code == 404
    index = client.get(reverse("reports:index")).content.decode()
    assert 'id="generate-closed"' not in index and closed.dataset_sha256 not in index
    assert client.post(reverse("reports:generate_open")).status_code == 302
    html = client.get(reverse("reports:open_html")).content.decode()
    assert "OPEN report (pooled, no arm-level results)" in html
    assert "Day-28 mortality by arm" not in html and "hazard ratio" not in html.lower()


def test_site_staff_do_not_see_the_reports_link_the_dmc_does(trial, investigator, dmc):
    link = f'href="{reverse("reports:index")}"'
    assert link not in browser(investigator).get(reverse("core:home")).content.decode()
    assert link in browser(dmc).get(reverse("core:home")).content.decode()
    assert browser(investigator).get(reverse("reports:index")).status_code == 403


def test_no_subjects_yet_is_a_message_not_an_error(dmc, rumcess):
    client = browser(dmc)
    response = client.post(reverse("reports:generate_open"), follow=True)
    assert response.status_code == 200
    assert "no subjects randomized yet" in response.content.decode()
    assert not ReportArtefact.objects.exists()
    assert client.get(reverse("reports:open_html")).status_code == 404


def test_cli_report_from_the_database_writes_report_dataset_and_manifest(trial, tmp_path,
                                                                          rumcess):
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path), "--closed",
                                      "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == {k: v for k, v in json.loads(result.output).items() if k != "written"}
    assert (manifest["report"], manifest["n_subjects"]) == ("closed", 3)
    assert (manifest["protocol_id"], manifest["protocol_version"],
            manifest["protocol_sha256"]) == ("rumcess", rumcess.protocol_version,
                                             rumcess.content_sha256)
    assert manifest["generated_at"].endswith("+00:00")
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest
    assert (tmp_path / "report-closed.pdf").read_bytes().startswith(b"%PDF")
    assert manifest["dataset_sha256"] in (tmp_path / "report-closed.html").read_text(
        encoding="utf-8")
    # the frozen CSV files are the dataset the report cites
    again = AnalysisDataset.from_csv_dir(tmp_path / "dataset", rumcess)
    assert again.content_sha256 == manifest["dataset_sha256"]
    assert set(manifest["tables"]) == {"subjects", "daily", "adverse_events", "deviations",
                                       "screening", "disposition"}


def test_the_closed_report_from_the_database_names_the_arms_by_their_labels(trial, dmc):
    """protocols/rumcess.yaml: control = "Standard therapy", msc = "MSC + standard
    therapy"; the trial fixture has 1 control and 2 MSC patients."""
    client = browser(dmc)
    client.post(reverse("reports:generate_closed"))
    html = client.get(reverse("reports:closed_html")).content.decode()
    assert "<th>Standard therapy</th><th>MSC + standard therapy</th>" in html  # Table 1
    assert "<td>Standard therapy</td><td>1</td>" in html  # mortality by arm
    assert "<td>MSC + standard therapy</td><td>2</td>" in html
    assert "Allocated to MSC + standard therapy (n = 2)" in html  # CONSORT box
    for arm_id in ("msc", "control"):
        assert f">{arm_id}<" not in html and f"Allocated to {arm_id} " not in html
