"""The headless-browser check catches what it is there for: a check that cannot fail is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import distinct_colours, file_url, visit_page

pytestmark = pytest.mark.integration


def test_console_errors_exceptions_and_outside_requests_are_reported(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body><p>hello</p>"
        '<img src="http://127.0.0.1:9/missing.png">'
        "<script>console.error('drawn wrong'); undefinedFunction();</script></body></html>"
    )
    visit = visit_page(file_url(page), width=400, height=300)
    assert visit.title == "broken"
    assert any("console.error: drawn wrong" in p for p in visit.problems), visit.problems
    assert any(p.startswith("uncaught:") for p in visit.problems), visit.problems
    assert "http://127.0.0.1:9/missing.png" in visit.requests
    assert visit.screenshot.startswith(b"\x89PNG")


def test_a_blank_page_has_few_colours(tmp_path: Path) -> None:
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><head><title>blank</title></head><body></body></html>")
    visit = visit_page(file_url(page), width=400, height=300)
    assert visit.problems == []
    assert visit.requests == [file_url(page)]
    assert distinct_colours(visit.screenshot) <= 2
