"""Config files for tests: private ports and state (see tools.sandbox.config)."""

from __future__ import annotations

from tools.sandbox.config import FAST_SETTINGS, free_port, korean_test_model, write_config

TEST_SETTINGS = FAST_SETTINGS
vosk_korean_model = korean_test_model

__all__ = ["TEST_SETTINGS", "free_port", "korean_test_model", "vosk_korean_model", "write_config"]
