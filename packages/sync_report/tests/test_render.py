"""The page as a file: self-contained, escaped, private, written atomically; and the CLI."""

from __future__ import annotations

import os
import re
import stat
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sr_samples import HOSTILE, add_corpus, add_hostile, write_sample_output
from sync_report import render_report_page
from sync_report.cli import main

# Every element and attribute the template itself writes. Anything else in the page came from
# data: an injection.
OUR_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "span",
    "code", "nav", "a", "main", "section", "div", "b", "i", "figure", "svg", "line", "text",
    "g", "rect", "circle", "figcaption", "details", "summary", "table", "thead", "tbody", "tr",
    "th", "td", "article", "pre", "footer",
}  # fmt: skip
OUR_ATTRS = {
    "lang", "charset", "http-equiv", "content", "name", "class", "id", "href", "data-job",
    "data-status", "data-count", "data-action", "data-field", "data-winner", "data-code",
    "xmlns", "viewbox", "role", "aria-label", "x1", "x2", "y1", "y2", "x", "y", "text-anchor",
    "width", "height", "fill", "cx", "cy", "r", "scope", "open",
}  # fmt: skip


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.comments: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Collector:
    collector = Collector()
    collector.feed(html)
    collector.close()
    return collector


def assert_only_our_markup(html: str) -> Collector:
    page = parse(html)
    tags = {tag for tag, _ in page.tags}
    assert tags <= OUR_TAGS, f"injected elements: {tags - OUR_TAGS}"
    attrs = {name for _, attrs in page.tags for name in attrs}
    assert attrs <= OUR_ATTRS, f"injected attributes: {attrs - OUR_ATTRS}"
    hrefs = {a.get("href") for tag, a in page.tags if tag == "a"}
    assert all(h and h.startswith("#target-") for h in hrefs), hrefs
    assert sum(1 for tag, _ in page.tags if tag == "title") == 1 + sum(
        1 for tag, _ in page.tags if tag == "g"
    )  # the page's own title and one per chart bar; every other "<title>" is text
    assert page.comments == []
    return page


def test_default_location_mode_0600_and_nothing_left_behind(tmp_path: Path) -> None:
    write_sample_output(tmp_path)
    path = render_report_page(tmp_path)
    assert path == tmp_path / "report.html"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # written again over a file anyone could read: still private (replaced, not rewritten)
    path.chmod(0o644)
    inode = path.stat().st_ino
    render_report_page(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "plans",
        "rejects",
        "report.html",
        "reports",
    ]


def test_out_path_and_its_directory_are_created(tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "informe.html"
    assert render_report_page(tmp_path / "nothing-here", out=out) == out
    html = out.read_text("utf-8")
    assert html.count("Todavía no hay informe de este sentido") == 2  # both directions


def test_self_contained_no_script_and_a_csp_that_forbids_one(tmp_path: Path) -> None:
    write_sample_output(tmp_path)
    html = render_report_page(tmp_path).read_text("utf-8")
    page = assert_only_our_markup(html)
    assert "script" not in {tag for tag, _ in page.tags}
    csp = [a["content"] for tag, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp
    assert "default-src 'none'" in (csp[0] or "")
    # nothing fetched: no URL of any kind outside the SVG namespace declaration
    urls = re.findall(r"(?:https?:)?//[^\s\"'<>]+", html)
    assert set(urls) == {"http://www.w3.org/2000/svg"}
    assert "url(" not in html
    assert "@import" not in html
    assert "@font-face" not in html


def test_the_content_people_need_is_there(tmp_path: Path) -> None:
    write_sample_output(tmp_path)
    html = render_report_page(tmp_path).read_text("utf-8")
    text = " ".join(parse(html).text)
    for expected in (
        "FactuSOL → Clientify",
        "Clientify → FactuSOL",
        "Simulación: no se ha escrito nada.",
        "ana.garcia@construccionesperez.es",  # a diff's after
        "Coincidencia dudosa",  # ambiguous_match, Spanish
        "Ambiguous match",  # and English
        "meltano invoke target-clientify < fixed-rejects.jsonl",  # how to replay
        "«factusol_id»",  # how to link by hand
        "Cliente inexistente",  # missing_client from the sentence alone
        "Construcciones Pérez Núñez, S.L.",  # a rejected record's name
    ):
        assert expected in text, expected


def test_hostile_values_are_text_everywhere(tmp_path: Path) -> None:
    write_sample_output(tmp_path)
    payloads = add_hostile(tmp_path)
    html = render_report_page(tmp_path, max_items=5000).read_text("utf-8")
    page = assert_only_our_markup(html)
    text = "".join(page.text)
    for payload in payloads:
        visible = payload.replace("\x00", "\u2400").replace("\x1b", "\u241b")  # ␀ ␛
        assert visible[:40] in text, payload
    # data is never evaluated as a template
    assert "{{ 7*7 }}{% if true %}ssti{% endif %}" in text


def test_the_hostile_corpus_renders_and_stays_text(tmp_path: Path) -> None:
    write_sample_output(tmp_path)
    added = add_corpus(tmp_path)
    assert added > 900  # the whole corpus, both directions
    path = render_report_page(tmp_path, max_items=5000)
    html = path.read_text("utf-8")  # valid UTF-8 even with lone surrogates in the data
    assert_only_our_markup(html)
    # every corpus record is on the page: a reject card (plus the samples' 3 + 2) and a change
    assert html.count('<article class="item reject"') == added + 5
    assert html.count('<article class="item change" data-action="update">') == added + 4


def test_cli_writes_the_page_and_prints_its_uri(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sample_output(tmp_path)
    out = tmp_path / "page.html"
    assert main(["--output-dir", str(tmp_path), "--out", str(out)]) == 0
    assert out.is_file()
    assert capsys.readouterr().out.strip() == f"Informe / report: {out.resolve().as_uri()}"


def test_cli_missing_directory_and_bad_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--output-dir", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["--output-dir", str(tmp_path), "--history", "0"]) == 1
    assert "history_limit" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


def test_umask_does_not_widen_the_mode(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = render_report_page(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_hostile_payloads_cover_the_injection_points() -> None:
    joined = "".join(HOSTILE)
    for needle in ("<script>", "onerror=", "</script>", "<svg", "</text>", '"><', "'><"):
        assert needle in joined
