"""The browser check's table rules on a tiny site: a table wider than the page and raw cells fail a page, a plain
table passes (these need Debian's Chromium, ``make browser``, and are skipped only where there is none); and the
book's table formatting (:func:`mamlib.report.tables.styled`) leaves no raw cell."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (make browser installs Debian's)")


def _load_checker():
    path = Path(__file__).parent / "browser" / "check_book.py"
    spec = importlib.util.spec_from_file_location("check_book", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_book", module)
    spec.loader.exec_module(module)
    return module


check_book = _load_checker()

# The layout of a Jupyter Book page, in little: the article is the content column, and output tables sit in a
# sideways-scrolling div.cell_output (as the book's stylesheet makes them).
PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
  body {{ margin: 0; font: 16px sans-serif; }}
  main {{ display: flex; }}
  nav {{ width: 280px; flex: none; }}
  article.bd-article {{ flex: 1; max-width: 820px; padding: 0 1rem; }}
  div.cell_output {{ overflow-x: auto; }}
</style></head>
<body><main><nav>contents</nav><article class="bd-article">
<h1>{title}</h1>
<div class="cell_output"><div class="output text_html">{table}</div></div>
</article></main></body></html>
"""


def _table(caption: str, header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _site(root: Path) -> dict[str, Path]:
    pages = {
        "good": _table("Table 1 — error (%)", ["λ", "source", "N(0,1)", "count"],
                       [["0.00", "12.30", "–", "7"], ["0.10", "11.9876", "12.40", "12"], ["1", "−0.5", "0.25", "3"]]),
        "wide": _table("A table of forty columns",
                       [f"a long header for column {i}" for i in range(40)],
                       [[f"long_unbreakable_cell_text_{i}" for i in range(40)]]),
        "none": _table("Table 2 — WER by block", ["layers merged", "WER"],
                       [["0-3", "10.00"], ["None", "12.50"]]),
        "float": _table("Table 5 — settings", ["setting", "value"], [["learning rate", "0.100000"], ["λ", "0.25"]]),
        "hidden": "<details><summary>more</summary>" + _table("", ["seed", "λ"], [["0", "nan"], ["1", "nan"]])
                  + "</details>",
    }
    out = {}
    for name, table in pages.items():
        out[name] = root / f"{name}.html"
        out[name].write_text(PAGE.format(title=name, table=table))
    return out


@pytest.fixture(scope="module")
def page():
    browser = check_book.Chromium(CHROMIUM)
    try:
        yield check_book.Page(browser)
    finally:
        browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return _site(tmp_path_factory.mktemp("site"))


@needs_chromium
def test_a_plain_table_passes(page, site):
    assert check_book.check_page(page, site["good"]) == []


@needs_chromium
def test_a_table_wider_than_the_page_fails_naming_it_and_both_widths(page, site):
    problems = check_book.check_page(page, site["wide"])
    assert len(problems) == 1, problems
    assert problems[0].startswith("table wider than the page at 1280 px: 'A table of forty columns' is ")
    width, column = (int(w) for w in
                     problems[0].removeprefix("table wider than the page at 1280 px: 'A table of forty columns' is ")
                     .removesuffix(" px").split(" px wide, the content column "))
    assert width > column > 500


@needs_chromium
def test_a_none_cell_fails_naming_the_table_and_the_cell(page, site):
    assert check_book.check_page(page, site["none"]) == [
        "raw cell in table 'Table 2 — WER by block': 'None' (missing value printed raw)"]


@needs_chromium
def test_an_unrounded_float_fails_naming_the_table_and_the_cell(page, site):
    assert check_book.check_page(page, site["float"]) == [
        "raw cell in table 'Table 5 — settings': '0.100000' (float not rounded)"]


@needs_chromium
def test_a_collapsed_table_is_still_read(page, site):
    assert check_book.check_page(page, site["hidden"]) == [
        "raw cell in table 'table headed \"seed\"': 'nan' (missing value printed raw, 2 cells)"]


@needs_chromium
def test_a_page_screenshot_goes_where_asked(page, site, tmp_path):
    check_book.check_page(page, site["good"], shots=tmp_path)
    assert (tmp_path / "good.png").stat().st_size > 0


@needs_chromium
def test_styled_tables_pass(page, tmp_path):
    """What :func:`mamlib.report.tables.styled` renders has no raw cell: floats in mixed columns and in the index
    rounded, None, NaN and the word "None" shown as "–"."""
    import numpy as np
    import pandas as pd

    from mamlib.report.tables import styled

    table = pd.DataFrame({"WER": [12.3456789, np.nan, 20.0], "n": [1, 2, 3],
                          "mixed": ["x", None, 0.04123456], "text": ["None", "0.100000", "12.3 ± 0.4"]},
                         index=pd.Index([0.1, None, "None"], name="λ"))
    html = tmp_path / "styled.html"
    html.write_text(PAGE.format(title="styled", table=styled(table, "A styled table").to_html()))
    assert check_book.check_page(page, html) == []


def test_styled_formats_every_float_and_missing_cell():
    import numpy as np
    import pandas as pd

    from mamlib.report.tables import styled

    table = pd.DataFrame({"WER": [12.3456789, np.nan], "n": [1, 2], "mixed": [0.04123456, None],
                          "text": ["None", "0.100000"], "as is": ["12.3 ± 0.4", "x"]},
                         index=pd.Index([0.1, None], name="λ"))
    table.columns = pd.MultiIndex.from_tuples([("a", 0.5), ("a", 1), ("b", None), ("b", "text"), ("b", "as is")])
    html = styled(table, "cap", digits=3).to_html()
    cells = {c.strip() for c in re.findall(r"<t[dh][^>]*>([^<]*)</t[dh]>", html)}
    assert {"12.346", "–", "1", "2", "0.041", "0.100", "12.3 ± 0.4", "x", "0.500"} <= cells
    assert not {"None", "nan", "NaN", "0.100000", "0.04123456", "12.3456789", "0.5"} & cells
    assert "<caption>cap</caption>" in html


def test_table2_rows_name_the_unmerged_model():
    import pandas as pd

    from mamlib.report.tables import UNMERGED, blocks_then_none, by_position, table2_block

    rows = [{"split": "test", "source": "source", "lambda": 0.5, "layers": layers, "wer": wer}
            for layers, wer in (("4-7", 11.0), ("0-3", 10.0))]
    rows.append({"split": "test", "source": "none", "lambda": 0.0, "layers": "all", "wer": 12.0})
    col = table2_block(pd.DataFrame(rows), 0.5)
    assert UNMERGED == "unmerged" and list(col.index) == ["4-7", "0-3", "unmerged"]
    positioned = by_position(col.to_frame("WER"))
    assert list(positioned.index) == ["block 1", "block 2", "unmerged"]
    assert list(blocks_then_none(positioned.iloc[::-1]).index) == ["block 1", "block 2", "unmerged"]
