"""What the worker does, as plain classes that know neither Faust nor aiohttp: ingest, policy
and scoring. Their SQL is in streams.store."""
