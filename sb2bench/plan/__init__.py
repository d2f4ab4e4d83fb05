"""Planning at parse time: what the DAG builds, read from the config before any job runs (torch-free).

Modules:
  config    JSON-Schema validation with defaults plus the checks a schema cannot express
  errors    ConfigError, raised by every check
  paths     the one owner of result paths and of a student folder's layout
  runs      training runs and the systems their students become
  merges    merge sweeps: a λ grid of interpolated systems
  figures   which systems and runs each report figure draws
  pairing   which systems were scored on the same prompts and noise, so a claim can pair them
  batch     the global batch of every training run: processes x batch_size x accumulation (checked at parse time)
  weights   every model a config names resolved offline; all missing pieces listed with their download commands
  cost      ``sb2bench plan``: GPU-hours and disk of each training, sampling and scoring job, with totals
  cli       the ``plan``, ``check-weights``, ``config-doc`` and ``validate-config`` subcommands
"""
