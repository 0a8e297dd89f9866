"""Carbon-intensity providers: Electricity Maps v3, the UK Carbon Intensity API, WattTime v3
and replay of the bundled data (:mod:`gridbridge.agent.replay`).

Each is a :class:`~gridbridge.agent.forecasts.HourlyProvider` that answers gCO2eq/kWh per
UTC hour with its signal (:mod:`gridbridge.agent.signals`): Electricity Maps direct or
lifecycle as asked, the UK API direct, WattTime marginal, replay whichever column the site
reports.
"""
