"""What the worker does, as plain classes that know neither Faust nor aiohttp: ingest, policy,
scoring and analysis."""
