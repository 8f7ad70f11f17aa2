"""Where the project's own files are, independent of the current directory."""

from __future__ import annotations

from pathlib import Path


def project_dir() -> Path:
    """The checkout holding asterisk/, dialplans/ and prompts/ (the package's parent)."""
    return Path(__file__).resolve().parent.parent
