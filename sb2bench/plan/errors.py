"""The error every config check raises; its own module so that config, runs, merges and figures can all
raise it without importing one another."""


class ConfigError(ValueError):
    pass
