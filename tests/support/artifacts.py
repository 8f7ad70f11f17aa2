"""Where tests leave what a person may want to look at afterwards (screenshots, logs)."""

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
