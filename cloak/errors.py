"""Typed errors with messages a user can act on."""

from __future__ import annotations

from pathlib import Path


class CloakError(Exception):
    """Base class for every error Cloak reports to a user."""


class PhotoError(CloakError):
    """A photo could not be read or written. The message names the file and what to do."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}")


class ConfigError(CloakError, ValueError):
    """A setting is out of range or inconsistent."""


class Cancelled(CloakError):
    """The user cancelled the job; nothing was written for the photo in progress."""
