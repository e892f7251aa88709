"""The people's view of a sync run: one static HTML page from the targets' report, plan,
reject and history files (counts, a chart of recent runs, before/after tables, conflicts, and
every reject explained in Spanish and English with what to do about it)."""

from sync_report.model import COUNTERS, JOBS, JobSpec, JobView, load_job
from sync_report.reasons import REJECT_CODES, Explanation, code_for_reason, explain_reject
from sync_report.render import DEFAULT_PAGE_NAME, build_page_html, render_report_page

__all__ = [
    "COUNTERS",
    "DEFAULT_PAGE_NAME",
    "JOBS",
    "REJECT_CODES",
    "Explanation",
    "JobSpec",
    "JobView",
    "build_page_html",
    "code_for_reason",
    "explain_reject",
    "load_job",
    "render_report_page",
]
