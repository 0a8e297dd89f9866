"""The site agent: runs beside a GPU cluster and reports it to the exchange.

Every cycle it reads how many GPUs are free per type and hour (an inventory source:
:mod:`~gridbridge.agent.inventory`), the zone's carbon intensity and price for the coming
hours (provider chains: :mod:`~gridbridge.agent.carbon`, :mod:`~gridbridge.agent.replay`,
:mod:`~gridbridge.agent.prices`, tried in order by :mod:`~gridbridge.agent.forecasts`),
builds a telemetry report with the exchange's own contract models
(:mod:`~gridbridge.agent.report`), writes it to a local SQLite spool
(:mod:`~gridbridge.agent.spool`) and delivers the spool to the exchange oldest first
(:mod:`~gridbridge.agent.uplink`), every HTTP call with timeouts and back-off
(:mod:`~gridbridge.agent.retry`). :mod:`~gridbridge.agent.runner` runs the cycle,
:mod:`~gridbridge.agent.config` reads ``site.toml``; ``gridbridge agent`` is the CLI.
"""
