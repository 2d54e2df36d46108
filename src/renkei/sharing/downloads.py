"""Serving report attachments: the one place that decides how a file leaves Renkei."""

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404

from renkei.audit.services import audit_read
from renkei.sharing.models import Attachment, Report
from renkei.sharing.services import blob_path


def attachment_download(*, user, report: Report, attachment_id) -> FileResponse:
    """The attachment of a report the caller may already see, always as a download (never rendered
    by a browser: it is whatever someone uploaded), with the read recorded in the audit trail."""
    attachment = (
        Attachment.objects.filter(pk=attachment_id, version__report=report).select_related("blob").first()
    )
    if attachment is None:
        raise Http404
    audit_read(actor=user, obj=attachment)
    response = FileResponse(
        default_storage.open(blob_path(attachment.blob_id), "rb"),
        as_attachment=True,
        filename=attachment.filename,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
