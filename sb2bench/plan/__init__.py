"""Planning at parse time: what the DAG builds, read from the config before any job runs.

Modules: config (JSON-Schema validation with defaults plus the checks a schema cannot express), errors
(ConfigError, raised by every check), runs (training runs and the systems their students become),
merges (merge sweeps: a λ grid of interpolated systems), figures (which systems and runs each report
figure draws).
"""
