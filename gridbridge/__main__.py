"""``python -m gridbridge`` runs the CLI."""

from gridbridge.cli import main

main()
