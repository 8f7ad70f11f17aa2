"""Voice prompts: the catalog, its build into Asterisk-ready audio, and spoken phrases."""
