"""A report as a download: the same CSV (UTF-8 with BOM) or XLSX file `hotline report` writes.

Written into a private temporary folder that is removed once the response is sent.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from reports.tables import Report, write_csv, write_xlsx

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def report_file(report: Report, fmt: str, filename: str) -> FileResponse:
    """The report written as fmt ("csv" or "xlsx"), offered as filename."""
    folder = Path(tempfile.mkdtemp(prefix="hotline-report-"))
    target = folder / f"report.{fmt}"
    if fmt == "csv":
        write_csv(report, target)
    else:
        write_xlsx(report, target)
    return FileResponse(
        target,
        media_type=MEDIA[fmt],
        filename=filename,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
