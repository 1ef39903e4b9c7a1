"""How a read command writes its result: a table for a person, lines for a script, or JSON.

- On a terminal: rich tables and colour.
- Piped (stdout not a TTY): one row per line, fields separated by a tab, no header, no colour,
  no box drawing — `cut -f2`, `awk -F'\\t'` and `sort` work on it. Notes for a person (totals,
  "more: --after …") go to stderr then, so stdout holds only rows.
- `--json`: one JSON document (an object or an array) on stdout; streams (`audit tail`,
  `dlq list`) write NDJSON instead, one JSON object per line, flushed as it comes.
"""

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.table import Table
from rich.text import Text

Cell = str | int | float | Text | None


def to_json(value: Any) -> str:
    """Compact JSON of models, dataclasses, datetimes and enums (pydantic's rules)."""
    return json.dumps(to_jsonable_python(value), ensure_ascii=False, separators=(",", ":"))


class Output:
    def __init__(self, console: Console, *, as_json: bool = False) -> None:
        self.console = console
        self.as_json = as_json

    @property
    def for_people(self) -> bool:
        return not self.as_json and self.console.is_terminal

    def document(self, value: Any) -> None:
        """The whole result as one JSON document (with --json)."""
        self._write(to_json(value))

    def json_line(self, value: Any) -> None:
        """One NDJSON line, flushed at once: a consumer of a stream sees it as it comes."""
        self._write(to_json(value))
        self.console.file.flush()

    def table(
        self, columns: Sequence[str], rows: Iterable[Sequence[Cell]], *, empty: str = ""
    ) -> None:
        rows = list(rows)
        if not self.for_people:
            for row in rows:
                self.row(row)
            return
        table = Table(header_style="bold")
        # The first column (an id, a session, a group) is kept on one line: it is what a
        # person copies from here. The others fold rather than lose their end to "…".
        for index, column in enumerate(columns):
            table.add_column(column, no_wrap=index == 0, overflow="fold")
        for row in rows:
            table.add_row(*(cell if isinstance(cell, Text) else Text(_text(cell)) for cell in row))
        if not rows and empty:
            table.caption = empty
        self.console.print(table)

    def row(self, cells: Sequence[Cell]) -> None:
        """One tab-separated line; tabs and newlines inside a value become spaces."""
        self._write("\t".join(_field(cell) for cell in cells))

    def line(self, text: Text | str) -> None:
        """A line of a stream (e.g. an audit record) for a person: styled on a terminal."""
        if self.for_people:
            self.console.print(text, highlight=False, soft_wrap=True)
        else:
            self._write(text.plain if isinstance(text, Text) else text)

    def note(self, markup: str) -> None:
        """A remark for a person (a total, a skipped record): stderr unless on a terminal."""
        if self.for_people:
            self.console.print(markup, highlight=False, soft_wrap=True)
        else:
            print(Text.from_markup(markup).plain, file=sys.stderr)

    def _write(self, text: str) -> None:
        self.console.file.write(text + "\n")


def _text(cell: Cell) -> str:
    return "-" if cell is None else str(cell)


def _field(cell: Cell) -> str:
    plain = cell.plain if isinstance(cell, Text) else _text(cell)
    return plain.replace("\t", " ").replace("\r", " ").replace("\n", " ")
