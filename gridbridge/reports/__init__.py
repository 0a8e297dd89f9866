"""Settlement reports of a cleared round: per member, per site, across borders, for the alliance.

:func:`build_reports` reads a clearing folder (``gridbridge clear --out``), the market bundle
it was cleared from and the round's ledger lines (ledger.csv, or lines from the ledger
database) and returns typed polars tables; :func:`write_reports` writes them as CSV or
Parquet files (byte-identical for equal inputs) or one Excel workbook. Money reconciles to
the cent with the ledger; see :mod:`gridbridge.reports.build` for each table's columns.
"""

from gridbridge.reports.build import REPORT_TABLES, build_reports, build_reports_from
from gridbridge.reports.inputs import RoundInputs, load_round, read_round_id, round_from_tables
from gridbridge.reports.write import FORMATS, WORKBOOK, report_bytes, write_reports

__all__ = ["FORMATS", "REPORT_TABLES", "WORKBOOK", "RoundInputs", "build_reports",
           "build_reports_from", "load_round", "read_round_id", "report_bytes", "round_from_tables",
           "write_reports"]
