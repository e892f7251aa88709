"""The page in a real headless browser: Debian's chromium driven by Playwright, from file://.

`playwright install` cannot download a browser here, so the system one is launched by path.
Skipped only when that browser is absent and neither CI nor FCSYNC_REQUIRE_BROWSER is set;
`.ci/run` sets FCSYNC_REQUIRE_BROWSER=1, so there a missing browser fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sr_samples import REPO, add_corpus, add_hostile, write_sample_output
from sync_report import render_report_page

CHROMIUM = os.environ.get("FCSYNC_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = REPO / "docs" / "report-page.png"
TITLE = "Sincronización FactuSOL ⇄ Clientify · informe"


def verdict(chromium: str, env: Mapping[str, str]) -> tuple[str, str]:
    """run, skip or fail: a missing browser is a skip on a laptop, a failure in CI."""
    if Path(chromium).exists():
        return "run", ""
    why = f"{chromium} not found (apt-get install -y --no-install-recommends chromium)"
    if env.get("CI") or env.get("FCSYNC_REQUIRE_BROWSER"):
        return "fail", f"the browser test must run here (CI/FCSYNC_REQUIRE_BROWSER set): {why}"
    return "skip", why


def test_a_missing_browser_skips_only_outside_ci(tmp_path: Path) -> None:
    absent = str(tmp_path / "no-chromium")
    assert verdict(absent, {})[0] == "skip"
    assert verdict(absent, {"CI": "true"})[0] == "fail"
    assert verdict(absent, {"FCSYNC_REQUIRE_BROWSER": "1"})[0] == "fail"
    (tmp_path / "chromium").touch()
    assert verdict(str(tmp_path / "chromium"), {"CI": "1"}) == ("run", "")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    action, why = verdict(CHROMIUM, os.environ)
    if action == "fail":
        pytest.fail(why)
    if action == "skip":
        pytest.skip(why)
    # playwright is in requirements-dev.txt: missing it is a broken setup, never a skip
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


class Opened:
    """A page loaded from file://, with what it asked for and what it complained about."""

    def __init__(self, browser: Any, path: Path, **context_args: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 900}, **context_args)
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda msg: self.problems.append(f"console {msg.type}: {msg.text}"))
        self.page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))
        self.page.on(
            "dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss())
        )
        self.page.goto(path.resolve().as_uri())

    def _route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        # offline laptop: anything but the page itself must not even be asked for
        route.continue_() if url.startswith("file://") else route.abort()

    def count(self, job: str, name: str) -> str:
        text: str = self.page.locator(f"#{job} [data-count={name}]").inner_text()
        return text

    def close(self) -> None:
        self.context.close()


def test_counts_diffs_conflicts_and_rejects_in_the_dom(browser: Any, tmp_path: Path) -> None:
    started = time.perf_counter()
    write_sample_output(tmp_path)
    page_path = render_report_page(tmp_path)
    opened = Opened(browser, page_path)
    page = opened.page
    try:
        assert page.title() == TITLE
        expected = {"created": "2", "linked": "1", "updated": "3", "unchanged": "412"}
        expected.update(rejected="3", conflicts="1")
        for name, value in expected.items():
            assert opened.count("target-clientify", name) == value
        assert opened.count("target-factusol", "unchanged") == "60"

        # a diff row: the first update's e-mail, before and after
        row = page.locator("#target-clientify article.change").first.locator("tr[data-field=email]")
        assert row.locator("td.before").inner_text() == "ana.garcia@gmail.com"
        assert row.locator("td.after").inner_text() == "ana.garcia@construccionesperez.es"
        assert "E-mail" in row.locator("th").inner_text()

        # the conflict: both values, Clientify marked as the winner
        conflict = page.locator("#target-clientify tr.conflict")
        assert conflict.get_attribute("data-winner") == "clientify"
        assert conflict.locator("td.won").inner_text().startswith("+34611000000")
        assert conflict.locator("td.lost").inner_text() == "+34912345678"

        # rejects, explained in both languages with the action to take
        ambiguous = page.locator("#target-clientify article.reject[data-code=ambiguous_match]")
        assert "Coincidencia dudosa" in ambiguous.inner_text()
        assert "Link it by hand" in ambiguous.inner_text()
        assert (
            page.locator("#target-factusol article.reject[data-code=missing_client]").count() == 1
        )

        # the dry run says so; the chart has one bar per run in the history
        assert page.locator("#target-factusol").get_attribute("data-status") == "dry_run"
        assert "no se ha escrito nada" in page.locator("#target-factusol .banner.dry").inner_text()
        assert page.locator("#target-clientify svg g.bar").count() == 13
        assert page.locator("#target-factusol svg g.bar.dry").count() == 1

        shot = tmp_path / "report-page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
        if os.environ.get("FCSYNC_UPDATE_SCREENSHOT"):
            shutil.copyfile(shot, SCREENSHOT)

        assert opened.requests == [page_path.resolve().as_uri()]
        assert opened.problems == []
    finally:
        opened.close()
    print(f"browser test: {time.perf_counter() - started:.2f} s")


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "escaping-alone"])
def test_hostile_data_runs_nothing(browser: Any, tmp_path: Path, bypass_csp: bool) -> None:
    write_sample_output(tmp_path)
    payloads = add_hostile(tmp_path)
    add_corpus(tmp_path)
    page_path = render_report_page(tmp_path, max_items=5000)
    # bypass_csp: the page's own CSP switched off, so escaping alone must hold
    opened = Opened(browser, page_path, bypass_csp=bypass_csp)
    page = opened.page
    try:
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.evaluate("typeof parent.__pwned") == "undefined"
        assert page.title() == TITLE
        assert page.evaluate("document.getElementById('pwnlink')") is None
        injected = page.evaluate(
            """() => {
                const bad = [];
                const foreign = 'script, img, iframe, form, button, base, math, object, embed, '
                    + 'meta[http-equiv=refresh], style ~ style, body style';
                for (const el of document.querySelectorAll(foreign)) bad.push(el.tagName);
                for (const el of document.querySelectorAll('*')) {
                    for (const attr of el.attributes) {
                        if (attr.name.startsWith('on') || /javascript:/i.test(attr.value))
                            bad.push(el.tagName + '[' + attr.name + ']');
                    }
                }
                return bad;
            }"""
        )
        assert injected == []
        # the payloads are on the page, as text people can read
        body = page.locator("body").inner_text()
        for payload in payloads[:8]:
            assert payload in body, payload
        assert page.locator("body").is_visible()  # the <style> payload hid nothing
        assert opened.requests == [page_path.resolve().as_uri()]
        assert [p for p in opened.problems if "pwned" in p or "dialog" in p] == []
    finally:
        opened.close()


def test_six_digit_tick_labels_are_not_clipped(browser: Any, tmp_path: Path) -> None:
    """A 100,000-record run: the chart's top tick reads 100.000 (or more) whole, inside the SVG."""
    history = tmp_path / "reports" / "target-clientify.history.jsonl"
    history.parent.mkdir(parents=True)
    runs = [{"created": 100_000, "run_at": "2026-12-01T10:00:00+00:00"}, {"updated": 3}]
    history.write_text("".join(json.dumps(run) + "\n" for run in runs), "utf-8")
    opened = Opened(browser, render_report_page(tmp_path))
    try:
        labels = opened.page.evaluate(
            """() => [...document.querySelectorAll('#target-clientify svg text')]
                .filter(t => /^[0-9.]+$/.test(t.textContent))
                .map(t => ({text: t.textContent, x: t.getBBox().x}))"""
        )
        assert {label["text"] for label in labels} >= {"0", "100.000"}
        for label in labels:
            assert label["x"] >= 0, label  # not cut by the SVG's left edge
    finally:
        opened.close()


def test_a_mentioned_client_links_to_its_history_page_offline(browser: Any, tmp_path: Path) -> None:
    write_sample_output(tmp_path)
    asked: list[set[int]] = []

    def history(codes: set[int]) -> dict[int, list[dict[str, object]]]:
        asked.append(codes)
        steps = [
            {"at": "2026-12-01T09:00:00+00:00", "reason": "first_link", "detail": {"key": "nif"}},
            {
                "at": "2026-12-02T10:00:00+00:00",
                "reason": "conflict",
                "side": "factusol",
                "field": "phone",
                "before": "+34911111111",
                "after": "<b>+34600000000</b>",
                "run_id": "r2",
                "detail": {"winner": "clientify"},
            },
        ]
        return dict.fromkeys(codes, steps)

    opened = Opened(browser, render_report_page(tmp_path, history=history))
    try:
        (codes,) = asked
        assert codes
        link = opened.page.locator("#target-clientify a.history").first
        assert int(link.inner_text()) in codes
        assert opened.page.locator("#target-factusol a.history").count() >= 1
        link.click()
        opened.page.wait_for_load_state()
        rows = opened.page.locator("table.history tr.step")
        assert rows.count() == 2
        assert rows.nth(1).get_attribute("data-reason") == "conflict"
        assert "<b>+34600000000</b>" in rows.nth(1).inner_text()  # shown, never run as markup
        assert "winner=clientify" in rows.nth(1).inner_text()
        assert all(url.startswith("file://") for url in opened.requests)
        assert opened.problems == []
    finally:
        opened.close()
