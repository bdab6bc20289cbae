"""legged_env's error type: a bad env config, named by its key, that the caller can print as one line."""


class ConfigError(ValueError):
    """An invalid env config value or key (the message names the key and where it came from)."""
