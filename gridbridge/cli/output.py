"""The CLI's one way to print: a rich console that keeps table rows whole when piped."""

from __future__ import annotations

from rich.console import Console


def make_console() -> Console:
    """A console for stdout; piped or captured, 160 columns wide so that rich does not wrap
    tables at its 80-column default."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    return console
