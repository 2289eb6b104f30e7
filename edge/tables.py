"""Tables the commands print: boxed on a terminal, plain aligned columns when piped.

A box drawn for an 80-column pipe truncates every cell that matters (versions, addresses, paths);
piped, each row is one line of columns separated by two spaces, never cut, with a header line, so
`grep`, `awk` and `column` read it as they read `ps` or `kubectl get`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console


def print_table(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    no_wrap: Sequence[str] = (),
) -> None:
    if console.is_terminal:
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column, no_wrap=column in no_wrap)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    cells = [[_one_line(c) for c in columns], *[[_one_line(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        console.out(line.rstrip(), highlight=False)


def _one_line(cell: str) -> str:
    return " ".join(cell.split()) or "-"
