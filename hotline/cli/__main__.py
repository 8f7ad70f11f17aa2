"""`python -m hotline.cli`: the same command as the `hotline` script."""

from hotline.cli.main import app

app()
