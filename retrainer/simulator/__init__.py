"""The upstream simulator: realistic expenses and customers with ground truth, and a publisher.

- `config.ScenarioConfig` (with `ExpenseConfig`, `CustomerConfig`, `DriftConfig`) decides it all;
  `world.simulate(config)` builds the records column-wise (no `schemas/` involved) with `truth`.
- `scenario.Scenario(config)` turns them into time-ordered events and message bytes, some
  deliberately malformed (`bad_messages` names the reason the codec gives).
- `publish.run_publish(PublishOptions(...))` sends them to Kafka or files, or backfills exports;
  `cli.register(app)` adds `retrainer publish`.
"""
