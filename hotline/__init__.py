"""Floor 4, composition: the one place a running hotline is wired (`app.py`) and the
`hotline` command (`cli/`, one module per sub-command group)."""
