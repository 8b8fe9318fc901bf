"""The one exception bad configuration raises: its message is a single line naming the setting."""


class ConfigurationError(Exception):
    """Raised at start-up when a setting is missing or invalid."""
