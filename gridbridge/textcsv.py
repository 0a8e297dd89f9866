"""Read a CSV file as a table of strings, reporting every defect as a :class:`Problem`.

The one CSV reader for raw data (importers, reference tables), datasets and market bundles.
It uses the standard :mod:`csv` module rather than polars' reader, because polars silently
pads short rows with nulls, cannot say which record is ragged, and raises its own exception
types on malformed input. Here every cell is a string (the equivalent of
``polars.read_csv(infer_schema=False)``) and every defect is a problem naming file, row and
fix:

* the text must be UTF-8 (a byte-order mark is ignored) and valid RFC 4180 CSV: a quote
  left open or a stray character after a closing quote is an error, not guessed around;
* the first line is the header; its names are stripped of surrounding spaces and must be
  non-empty and unique;
* every row has one field per header column; a blank line in the middle is such a ragged
  row, while blank rows at the end of the file (empty, or only spaces and commas, as
  spreadsheets leave them) are ignored.

:func:`read_csv_text` collects the problems (for callers that report everything at once);
:func:`load_csv_text` raises them as one :class:`DataImportError`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl

from gridbridge.errors import MAX_ROWS_REPORTED, DataImportError, NotFoundError, Problem

__all__ = ["RAGGED_ROW", "load_csv_text", "read_csv_text", "unreadable"]

#: How a ragged row is described; ``{width}`` is its field count, ``{columns}`` the header's.
RAGGED_ROW = "has {width} field(s) but the header has {columns}"
_RAGGED_FIX = "give every row one value per header column (quote values that contain commas)"


def unreadable(file: str, exc: OSError) -> Problem:
    """The problem for a file the operating system will not read (permissions, a folder)."""
    return Problem(
        file,
        None,
        None,
        f"cannot be read: {exc.strerror or exc}",
        "check the file's permissions and that it is a regular file",
    )


def _header_problems(file: str, header: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for position, column in enumerate(header, start=1):
        if not column:
            problems.append(
                Problem(
                    file,
                    None,
                    None,
                    f"header column {position} has no name",
                    "name every column or remove the empty one",
                )
            )
        elif column in seen:
            problems.append(
                Problem(
                    file,
                    None,
                    column,
                    f"column '{column}' appears twice",
                    "keep one column of each name",
                )
            )
        seen.add(column)
    return problems


def _ragged_problems(
    file: str, header: list[str], rows: list[list[str]], ragged: str
) -> list[Problem]:
    found = [(i, len(r)) for i, r in enumerate(rows, start=1) if len(r) != len(header)]
    problems = [
        Problem(
            file,
            row,
            None,
            ragged.format(width=width, columns=len(header))
            + (" (an empty line)" if width == 0 else ""),
            _RAGGED_FIX,
        )
        for row, width in found[:MAX_ROWS_REPORTED]
    ]
    if len(found) > MAX_ROWS_REPORTED:
        problems.append(
            Problem(
                file,
                None,
                None,
                f"... and {len(found) - MAX_ROWS_REPORTED} more ragged rows",
                "give every row one value per header column",
            )
        )
    return problems


def read_csv_text(
    path: str | Path,
    *,
    file: str | None = None,
    header_fix: str = "export the data again with its header",
    ragged: str = RAGGED_ROW,
) -> tuple[pl.DataFrame | None, list[Problem]]:
    """Read ``path`` as a table of strings: ``(frame, [])``, or ``(None, problems)``.

    ``file`` names the file in the problems (default: the path as given); ``header_fix`` is
    the fix for an empty file (say which header it needs); ``ragged`` overrides
    :data:`RAGGED_ROW`. Rows are 1-based data rows (the header is not counted). At most
    :data:`~gridbridge.errors.MAX_ROWS_REPORTED` ragged rows are listed, then a count.
    """
    path = Path(path)
    name = str(path) if file is None else file
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [unreadable(name, exc)]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [
            Problem(
                name,
                None,
                None,
                f"is not UTF-8 text (bad byte on line {line})",
                "save the file as UTF-8 CSV",
            )
        ]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        records = list(reader)
    except csv.Error as exc:
        return None, [
            Problem(
                name,
                None,
                None,
                f"is not valid CSV near line {reader.line_num}: {exc}",
                'close every quoted field and double any quote inside one ("")',
            )
        ]
    while records and not any(cell.strip() for cell in records[-1]):
        records.pop()
    if not records:
        return None, [Problem(name, None, None, "the file is empty", header_fix)]
    header, rows = [h.strip() for h in records[0]], records[1:]
    problems = _header_problems(name, header) + _ragged_problems(name, header, rows, ragged)
    if problems:
        return None, problems
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(header)
    frame = pl.DataFrame(
        [pl.Series(h, list(c), dtype=pl.String) for h, c in zip(header, columns, strict=True)]
    )
    return frame, []


def load_csv_text(
    path: str | Path,
    *,
    file: str | None = None,
    header_fix: str = "export the data again with its header",
    ragged: str = RAGGED_ROW,
) -> pl.DataFrame:
    """:func:`read_csv_text`, raising instead of returning problems.

    Raises :class:`NotFoundError` when ``path`` does not exist and
    :class:`DataImportError` listing every problem when it cannot be read as CSV.
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(
            f"{path if file is None else file}: file not found — fix: check the path (it is "
            "resolved from the current directory)"
        )
    frame, problems = read_csv_text(path, file=file, header_fix=header_fix, ragged=ragged)
    if frame is None:
        raise DataImportError.from_problems(problems)
    return frame
