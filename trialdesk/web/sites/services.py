"""Use cases for sites."""

from __future__ import annotations

from django.db import transaction

from trialdesk.protocol import Protocol
from trialdesk.web.sites.models import Site


@transaction.atomic
def sync_sites(protocol: Protocol) -> list[Site]:
    """Create or update a Site row for every site of the protocol (never deletes)."""
    sites = []
    for spec in protocol.sites:
        site, created = Site.objects.get_or_create(
            code=spec.id, defaults={"name": spec.name, "timezone": spec.timezone})
        if not created and (site.name, site.timezone) != (spec.name, spec.timezone):
            site.name, site.timezone = spec.name, spec.timezone
            site._change_reason = f"synchronised with protocol {protocol.protocol_id} " \
                                  f"v{protocol.protocol_version}"
            site.save()
        sites.append(site)
    return sites
