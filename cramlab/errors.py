"""Every error cramlab raises on purpose is a CramlabError: one clear line naming the problem and the fix.

The CLI prints `error: <message>` and exits with code 2; the API raises the specific subclass.
Also owns the one output-folder check every writer uses (`writable_folder`): its errors are the point of it.
"""
import os
from pathlib import Path


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


def writable_folder(folder) -> Path:
    """`folder` as a Path, created if needed; OutputPathError when it cannot be created or written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create output folder {folder}: {exc.strerror}; choose another --out") from None
    if not os.access(folder, os.W_OK):
        raise OutputPathError(f"output folder {folder} is not writable; choose another --out")
    return folder
