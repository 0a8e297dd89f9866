"""``gridbridge demo``: the whole system on one machine, on the bundled 2023 data, no network.

:func:`~gridbridge.demo.run.run_demo` initialises an exchange on a fresh SQLite file, starts
it (``gridbridge exchange serve`` in its own process), sets each site's asks through the API
as its operator, runs one site agent per bundled site (``gridbridge agent run --once``
processes replaying the bundle's free GPUs, carbon intensity and prices), opens a round,
submits the bundled bids as their members, closes the round and waits for the exchange's
worker to clear it, runs the agents again on a clock past the window so that they fetch their
assignments and post (simulated) metering, and prints the round's summary and each member's
net position. Every step goes over real HTTP with the role's own token. The demo's files
live in one folder (:class:`~gridbridge.demo.layout.DemoLayout`).
"""

from __future__ import annotations

__all__: list[str] = []
