"""Demo set-up for ``make run``: sites, one account per role, a sealed list, screenings.

Everything goes through the same service functions as real use. Passwords are
random and printed once, at first start; nothing here runs outside demo mode. The ICU
data feed's account (integration role) gets no usable password but an API token,
printed once too, for ``POST /api/fhir``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured

from trialdesk.clinical.timeutil import utcnow
from trialdesk.protocol import Protocol
from trialdesk.protocol.schema import RandomizationMethod
from trialdesk.randomization import generate_emergency_lists, generate_list
from trialdesk.web.accounts.models import Role
from trialdesk.web.accounts.services import create_user
from trialdesk.web.api.services import create_token
from trialdesk.web.randomization.models import RandomizationList
from trialdesk.web.randomization.services import import_list, randomize
from trialdesk.web.screening.models import Screening
from trialdesk.web.screening.services import close_screening, create_screening, record_consent
from trialdesk.web.sites.services import sync_sites

TRIAL_WIDE = {Role.DATA_MANAGER, Role.MONITOR, Role.STATISTICIAN, Role.DMC_STATISTICIAN,
              Role.DMC, Role.SPONSOR, Role.ADMINISTRATOR}
#: machine accounts: an API token instead of a password (the ICU feed of the first site)
TOKEN_ONLY = {Role.INTEGRATION}


@dataclass
class DemoReport:
    credentials: dict[str, str] = field(default_factory=dict)
    #: username -> API token of the machine accounts (shown once, like the passwords)
    tokens: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = list(self.notes)
        if self.credentials:
            lines.append("Demo accounts (shown once; change or delete before real use):")
            lines += [f"  {user:<16} {password}" for user, password in self.credentials.items()]
        if self.tokens:
            lines.append("API tokens (shown once; `Authorization: Bearer <token>`, "
                         "POST /api/fhir):")
            lines += [f"  {user:<16} {token}" for user, token in self.tokens.items()]
        return "\n".join(lines)


def _record(onset: dt.datetime, **changes) -> dict:
    record = {
        "birth_date": "1976-03-14", "sex": "female", "pregnant": False, "septic_shock": True,
        "septic_shock_onset": onset.isoformat(), "neutrophils": {"value": 0.2, "unit": "10^9/L"},
        "chemoresistant_oncohematological": False, "neutropenia_cause": "post_chemotherapy",
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def _demo_password(username: str, email: str) -> str:
    """A random password the validators accept: about 1 in 5,000 random 16-character
    passwords is refused as "too similar" to a long username such as 'investigator'."""
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    probe = get_user_model()(username=username, email=email)
    while True:
        password = secrets.token_urlsafe(12)
        try:
            validate_password(password, probe)
        except ValidationError:
            continue
        return password


def setup_demo(protocol: Protocol) -> DemoReport:
    if not getattr(settings, "DEMO", False):
        raise ImproperlyConfigured("Demo data is only loaded with TRIALDESK_DEMO=1.")
    report = DemoReport()
    sites = sync_sites(protocol)
    site = sites[0]
    users = get_user_model().objects
    for role in Role:
        username = role.value.replace("_", "")
        if users.filter(username=username).exists():
            continue
        password = _demo_password(username, f"{username}@example.org")
        user = create_user(username, password, role=role.value,
                           site_code=None if role in TRIAL_WIDE else site.code,
                           email=f"{username}@example.org")
        if role in TOKEN_ONLY:
            user.set_unusable_password()  # API only: the sign-in refuses it anyway
            user.save(update_fields=["password"])
            report.tokens[username] = create_token(user, "ICU data feed (demo)")[1]
        else:
            report.credentials[username] = password
    if not report.credentials and not report.tokens:
        report.notes.append("Demo accounts already exist (passwords and the feed's token "
                            "were shown at first start).")
    coordinator = users.get(username="coordinator")
    # the sealed list is the unblinded statistician's (randlist.manage), never the
    # blinded trial statistician's
    list_keeper = users.get(username=Role.DMC_STATISTICIAN.value.replace("_", ""))
    if protocol.randomization.method is not RandomizationMethod.MINIMIZATION and \
            not RandomizationList.objects.filter(label="main", active=True).exists():
        seed = secrets.token_hex(16)
        alist = generate_list(protocol, seed=seed, size_per_stratum=40)
        import_list(protocol, alist.to_csv(), alist.commitment(), user=list_keeper)
        report.notes.append(f"Loaded a demo allocation list, commitment {alist.commitment()}.")
        for code, elist in generate_emergency_lists(protocol, seed=seed).items():
            site_obj = next(s for s in sites if s.code == code)
            import_list(protocol, elist.to_csv(), elist.commitment(), user=list_keeper,
                        site=site_obj)
    if not Screening.objects.exists():
        _demo_screenings(protocol, site, coordinator)
        report.notes.append("Created demo screenings at different stages.")
    return report


def _demo_screenings(protocol: Protocol, site, user) -> None:
    now = utcnow()
    # open, early: consent still to be recorded
    create_screening(protocol, site, user, _record(now - dt.timedelta(hours=1, minutes=20)))
    # open, urgent: 9 h 10 min since onset, consent recorded
    urgent = create_screening(protocol, site, user, _record(
        now - dt.timedelta(hours=9, minutes=10), neutropenia_cause="aplastic_anemia")).screening
    record_consent(protocol, urgent, user, consent_type="legal_representative",
                   document_version="1.0", obtained_at=now - dt.timedelta(minutes=30),
                   obtained_by="Dr Demo", signed_by="Spouse")
    # incomplete: neutrophils not back yet
    create_screening(protocol, site, user, _record(now - dt.timedelta(hours=4),
                                                   neutrophils=None))
    # randomized
    done = create_screening(protocol, site, user,
                            _record(now - dt.timedelta(hours=3))).screening
    record_consent(protocol, done, user, consent_type="patient", document_version="1.0",
                   obtained_at=now - dt.timedelta(hours=2), obtained_by="Dr Demo")
    randomize(done.pk, user=user, request_id=f"demo-{done.pk}", protocol=protocol)
    # not enrolled: declined
    declined = create_screening(protocol, site, user,
                                _record(now - dt.timedelta(hours=6))).screening
    close_screening(declined, user, reason_code="declined", detail="family declined")
