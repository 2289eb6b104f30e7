"""A table piped to another program is one line per row, nothing cut, no box drawing."""

from __future__ import annotations

import io

from rich.console import Console

from edge.tables import print_table

LONG = "postgresql://postgres@127.0.0.1:15432/a_database_name_longer_than_a_narrow_pipe_allows"


def test_piped_rows_are_whole_aligned_lines() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=80)
    print_table(console, "t", ("name", "address"), [("kafka", "127.0.0.1:19092"), ("pg", LONG)])
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "name   address",
        "kafka  127.0.0.1:19092",
        f"pg     {LONG}",
    ]


def test_an_empty_cell_shows_a_dash_and_a_line_break_does_not_split_the_row() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False)
    print_table(console, "t", ("a", "b", "c"), [("", "two\nlines", "x")])
    assert buffer.getvalue().splitlines()[1] == "-  two lines  x"


def test_a_terminal_gets_the_boxed_table() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    print_table(console, "registry", ("name",), [("kafka",)])
    assert "registry" in buffer.getvalue()
    assert "┃" in buffer.getvalue()
