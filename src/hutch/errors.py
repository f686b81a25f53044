"""The one exception hierarchy of hutch.

Every error says what was wrong and where: the file, the JSON path, the flag or the container.
"""


class HutchError(Exception):
    """Base of every error hutch raises on purpose."""


class ConfigError(HutchError):
    """A config.json (or other input document) is invalid; the message names the field."""


class StateError(HutchError):
    """An operation was asked of a container in a state that does not allow it."""


class NotFoundError(HutchError):
    """A container, file or other named thing does not exist."""


class ExistsError(HutchError):
    """A container or other named thing already exists."""


class HostError(HutchError):
    """The host cannot do what was asked (a limit, a missing kernel feature)."""
