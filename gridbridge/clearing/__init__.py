"""Clearing outputs on disk: what ``gridbridge clear`` writes, and reading them back."""

from gridbridge.clearing.outputs import ClearingFiles, read_clearing, write_clearing, write_frontier

__all__ = ["ClearingFiles", "read_clearing", "write_clearing", "write_frontier"]
