"""GridBridge's exception tree (rooted in :class:`optim.errors.GridBridgeError`).

::

    GridBridgeError                 (optim.errors)
    ├── MarketInputError            (optim.errors) inconsistent inputs handed to the core
    ├── InputError                  bad user input: a file, an option, a value
    │   ├── DataImportError         a raw data file (carbon, prices, reference) is unusable
    │   └── BundleError             a market bundle failed validation (lists every problem)
    ├── NotFoundError               a named file, zone, site... does not exist
    └── LedgerError                 a posting the ledger refuses (unbalanced, posted twice)

Every message names the file/field and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from optim.errors import GridBridgeError, MarketInputError

__all__ = [
    "MAX_ROWS_REPORTED",
    "BundleError",
    "DataImportError",
    "GridBridgeError",
    "InputError",
    "LedgerError",
    "MarketInputError",
    "NotFoundError",
    "Problem",
]


#: Rows listed per (file, field, kind of problem) before one "... and N more" line.
MAX_ROWS_REPORTED = 20


class InputError(GridBridgeError, ValueError):
    """Bad user input: a malformed file, an out-of-range option, an unknown name."""

    exit_code = 2


class DataImportError(InputError):
    """A raw data file (Electricity Maps export, price CSV, reference table) is unusable."""

    @classmethod
    def from_problems(cls, problems: Sequence[Problem]) -> DataImportError:
        """One error for a file's problems: the problem itself, or one line per problem."""
        if len(problems) == 1:
            return cls(str(problems[0]))
        return cls("\n".join([f"{len(problems)} problems:", *(f"  - {p}" for p in problems)]))


class NotFoundError(InputError):
    """A file, zone, site or other named thing does not exist."""


class LedgerError(GridBridgeError):
    """The settlement ledger refuses a posting: unbalanced, malformed, or a round posted twice.

    Nothing is written when it is raised: a round's postings go in one transaction or not at
    all.
    """

    exit_code = 5


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation finding.

    ``row`` is the 1-based data row (the header is not counted; in a CSV the data row ``n``
    is on line ``n + 1``); ``None`` when the problem is about the whole file or column.
    """

    file: str
    row: int | None
    field: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.message} — fix: {self.fix}"


class BundleError(InputError):
    """A market bundle is invalid; ``problems`` lists every finding (file, row, field, fix)."""

    def __init__(self, bundle: str, problems: list[Problem]) -> None:
        self.bundle = bundle
        self.problems = problems
        shown = problems[:50]
        lines = [f"market bundle {bundle} is invalid ({len(problems)} problem(s)):"]
        lines += [f"  - {p}" for p in shown]
        if len(problems) > len(shown):
            lines.append(f"  ... and {len(problems) - len(shown)} more")
        super().__init__("\n".join(lines))
