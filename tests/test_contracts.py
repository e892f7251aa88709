"""Contracts between packages that must not import each other."""

from customer_sync import PLAN_ACTIONS, REJECT_CODES
from sync_report import REJECT_CODES as EXPLAINED_CODES
from sync_report.reasons import explain_reject


def test_every_reject_code_the_targets_write_is_explained_on_the_report_page():
    # sync_report depends on jinja2 only; the codes are a contract, checked here
    assert set(REJECT_CODES) <= set(EXPLAINED_CODES)
    for code in REJECT_CODES:
        assert explain_reject(code, "x").code == code


def test_plan_actions_are_the_page_counters():
    assert set(PLAN_ACTIONS) >= {"create", "link", "update", "unchanged", "reject", "conflict"}
