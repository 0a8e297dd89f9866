"""GridBridge: the compute exchange of an alliance of mid-sized nations.

Domain types, data importers, market bundles, storage, the HTTP API, the site agent, the
settlement ledger and reports, and the ``gridbridge`` command line.
"""

__version__ = "0.1.0"
