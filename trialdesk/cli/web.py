"""Commands that work on the trial database (Django): accounts, audit, demo set-up."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from trialdesk.cli.base import app, handles_errors, out

web_app = typer.Typer(help="Accounts and demo data in the trial database.",
                      no_args_is_help=True)
audit_app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)
app.add_typer(web_app, name="web")
app.add_typer(audit_app, name="audit")


def setup_django() -> None:
    """Configure Django from the environment (same settings as the web app)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialdesk.web.settings")
    import django

    django.setup()


@web_app.command("createuser")
@handles_errors
def createuser(
    username: Annotated[str, typer.Option("--username", help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="investigator, coordinator, lab, "
                                      "data_manager, monitor, statistician, dmc, "
                                      "administrator.")],
    site: Annotated[str | None, typer.Option(
        "--site", help="Site code; omit for a trial-wide role.")] = None,
    email: Annotated[str, typer.Option("--email", help="E-mail address.")] = "",
) -> None:
    """Create an account with one role. The password is read from standard input."""
    setup_django()
    from trialdesk.web.accounts.services import create_user

    password = sys.stdin.readline().rstrip("\n")
    user = create_user(username, password, role=role, site_code=site, email=email)
    out.print(f"created {user.get_username()} ({role} @ {site or 'all sites'})")


@web_app.command("demo-setup")
@handles_errors
def demo_setup() -> None:
    """Load the demo (TRIALDESK_DEMO=1 only): sites, accounts, list, screenings."""
    setup_django()
    from trialdesk.web.core.protocol_access import current_protocol
    from trialdesk.web.demo import setup_demo

    print(setup_demo(current_protocol()))


@audit_app.command("verify")
@handles_errors
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 1 if any audit row was changed outside the app."""
    setup_django()
    from trialdesk.web.audit.chain import verify_chain

    report = verify_chain()
    print(report)
    if not report.ok:
        raise typer.Exit(1)
