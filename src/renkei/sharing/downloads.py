"""Serving attachments of reports and advisories: the one place that decides how a file leaves Renkei."""

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404

from renkei.audit.services import audit_read
from renkei.sharing.models import Advisory, AdvisoryAttachment, Attachment, Report
from renkei.sharing.services import blob_path


def report_attachment_download(*, user, report: Report, attachment_id) -> FileResponse:
    """An attachment of a report the caller may already see (see `_download`)."""
    return _download(user, Attachment.objects.filter(pk=attachment_id, version__report=report))


def advisory_attachment_download(*, user, advisory: Advisory, attachment_id) -> FileResponse:
    """An attachment of an advisory the caller may already see (see `_download`)."""
    return _download(user, AdvisoryAttachment.objects.filter(pk=attachment_id, advisory=advisory))


def _download(user, attachments) -> FileResponse:
    """The one attachment in `attachments`, always as a download (never rendered by a browser: it
    is whatever someone uploaded), with the read recorded in the audit trail."""
    attachment = attachments.select_related("blob").first()
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
