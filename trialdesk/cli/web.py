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
                                      "data_manager, monitor, statistician, "
                                      "dmc_statistician, dmc, sponsor, administrator, "
                                      "integration (API token only).")],
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


@web_app.command("token")
@handles_errors
def token(
    username: Annotated[str, typer.Option("--username", help="The account the token acts as "
                                          "(e.g. the ICU feed's integration account).")],
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. "
                                      "'ICU FHIR bridge, bed-side monitors'.")],
) -> None:
    """Issue an API token for an account; its secret is printed once and stored hashed."""
    setup_django()
    from django.contrib.auth import get_user_model

    from trialdesk.errors import InputRejected
    from trialdesk.web.api.services import create_token

    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InputRejected(f"No account '{username}': create it first with "
                            "'trialdesk web createuser'.", field="username")
    row, plaintext = create_token(user, name)
    out.print(f"token {row.prefix}… for {username} ({name}); keep it secret, it is not "
              "shown again:")
    print(plaintext)


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


def _register_randlist_import() -> None:
    from trialdesk.cli.randlist import randlist_app

    @randlist_app.command("import")
    @handles_errors
    def randlist_import(
        list_file: Annotated[str, typer.Argument(help="The sealed list (CSV).")],
        commitment: Annotated[str, typer.Option(
            "--commitment", help="SHA-256 commitment published before the trial.")],
        username: Annotated[str, typer.Option(
            "--username", help="Account recorded as importing the list.")],
        site: Annotated[str | None, typer.Option(
            "--site", help="Site code, for that site's emergency list.")] = None,
    ) -> None:
        """Load a sealed list into the trial database after checking its commitment.

        The account must hold randlist.manage (unblinded statistician, administrator):
        the list reveals the allocation sequence.
        """
        setup_django()
        from pathlib import Path

        from django.contrib.auth import get_user_model

        from trialdesk.errors import InputRejected
        from trialdesk.web.accounts.permissions import has_permission
        from trialdesk.web.core.protocol_access import current_protocol
        from trialdesk.web.randomization.services import import_list
        from trialdesk.web.sites.models import Site

        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise InputRejected(f"No account '{username}'.", field="username")
        if not has_permission(user, "randlist.manage"):
            raise InputRejected(
                f"Account '{username}' may not load a sealed list: that is "
                "randlist.manage, held by the unblinded statistician (dmc_statistician) "
                "or an administrator, so the blinded trial statistician and the sites "
                "never see the allocation sequence.", field="username")
        site_obj = None
        if site is not None:
            site_obj = Site.objects.filter(code=site).first()
            if site_obj is None:
                raise InputRejected(f"Unknown site '{site}'.", field="site")
        try:
            text = Path(list_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputRejected(f"{list_file}: cannot read the file ({exc.strerror}).") from None
        rlist = import_list(current_protocol(), text, commitment, user=user, site=site_obj)
        out.print(f"loaded the '{rlist.label}' list ({rlist.slots.count()} slots), "
                  f"commitment {rlist.commitment_sha256}")


_register_randlist_import()
