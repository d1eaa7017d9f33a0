"""Every error cramlab raises on purpose is a CramlabError: one clear line naming the problem and the fix.

The CLI prints `error: <message>` and exits non-zero; the API raises the specific subclass.
"""


class CramlabError(Exception):
    """Base class: a mistake in the input or the environment, explained in one line."""


class BadInputError(CramlabError, ValueError):
    """An argument is out of range or of the wrong kind."""


class TextTooShortError(BadInputError):
    """The text has fewer tokens than were asked for."""


class ContextTooLongError(BadInputError):
    """n_tokens + n_mem (+ sink) does not fit the model's context."""


class UnknownModelError(CramlabError, KeyError):
    """The model name is neither registered, a local path, nor a hub id."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class HubUnreachableError(CramlabError, OSError):
    """The Hugging Face hub (or another download) cannot be reached."""


class DeviceError(CramlabError, RuntimeError):
    """The device or dtype asked for is not available here."""


class VectorFileError(CramlabError, OSError):
    """A vector file is corrupt, truncated, or does not match the model."""


class FingerprintMismatchError(VectorFileError):
    """The vector file was made for other weights."""


class ConfigError(BadInputError):
    """A sweep configuration has an unknown key or a wrong type."""


class OutputPathError(CramlabError, OSError):
    """An output path cannot be written."""
