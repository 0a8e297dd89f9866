"""Tests of the raw grid-data importers (carbon, prices, local clocks)."""
