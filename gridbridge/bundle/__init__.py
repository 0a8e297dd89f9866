"""Market bundles: the file form of one market round (DESIGN.md "Market bundle").

A bundle is a folder with ``market.toml`` and the tables ``members``, ``gpus``, ``sites``,
``capacity``, ``grid`` and ``bids``, each as ``.csv`` or ``.parquet``.

* :func:`read_bundle` / :func:`read_bundle_with_warnings` read a folder into a validated
  :class:`optim.market.Market` or raise :class:`~gridbridge.errors.BundleError` listing every
  problem (file, row, field, fix); a bad bundle never half-loads.
* :func:`validate_bundle` applies the same rules to frames already in memory.
* :func:`write_bundle` writes a Market as CSV or Parquet, byte-identically for equal input.
* :func:`parse_gpu_options` / :func:`format_gpu_options` handle ``H100:24;A100:56``.
"""

from gridbridge.bundle.options import bid_options_table, format_gpu_options, parse_gpu_options
from gridbridge.bundle.reader import read_bundle, read_bundle_with_warnings
from gridbridge.bundle.validate import BundleCheck, check_bundle, validate_bundle
from gridbridge.bundle.writer import write_bundle

__all__ = [
    "BundleCheck",
    "bid_options_table",
    "check_bundle",
    "format_gpu_options",
    "parse_gpu_options",
    "read_bundle",
    "read_bundle_with_warnings",
    "validate_bundle",
    "write_bundle",
]
