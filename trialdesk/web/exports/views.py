"""The export page and the two downloads (ODM 1.3.2 XML, long CSV), streamed.

For ``data.export`` (data manager, sponsor, administrator). The file covers the sites
where the user holds the permission (a trial-wide role: every site). The response is a
``StreamingHttpResponse``: the database is read and the file written chunk by chunk
while it downloads; the export log row is written first and completed with the
SHA-256 after the last byte.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from trialdesk.web.accounts.permissions import requires, sites_for
from trialdesk.web.core.protocol_access import current_protocol
from trialdesk.web.exports.models import ExportFormat, ExportLog
from trialdesk.web.exports.services import (
    CONTENT_TYPES,
    filename,
    start_export,
    stream_export,
)

ACTION = "data.export"


@require_GET
@requires(ACTION)
def index(request: HttpRequest) -> HttpResponse:
    logs = ExportLog.objects.select_related("user")[:50]
    codes = list(sites_for(request.user, ACTION).values_list("code", flat=True))
    return render(request, "exports/index.html", {"logs": logs, "site_codes": codes})


def _download(request: HttpRequest, fmt: str) -> StreamingHttpResponse:
    protocol = current_protocol()
    codes = list(sites_for(request.user, ACTION).values_list("code", flat=True))
    log = start_export(fmt, protocol, user=request.user, channel="web", site_codes=codes)
    response = StreamingHttpResponse(stream_export(log, protocol),
                                     content_type=f"{CONTENT_TYPES[fmt]}; charset=utf-8")
    response["Content-Disposition"] = (f'attachment; filename="'
                                       f'{filename(protocol, fmt, log.started_at)}"')
    response["X-TrialDesk-Export-Id"] = str(log.pk)
    return response


@require_GET
@requires(ACTION)
def download_odm(request: HttpRequest) -> StreamingHttpResponse:
    return _download(request, ExportFormat.ODM)


@require_GET
@requires(ACTION)
def download_csv(request: HttpRequest) -> StreamingHttpResponse:
    return _download(request, ExportFormat.CSV)
