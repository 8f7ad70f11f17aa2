"""The `hotline` command: `main.py` builds it, one module per sub-command group adds to it."""
