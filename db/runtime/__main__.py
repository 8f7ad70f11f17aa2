"""`python -m db.runtime`: the store process's child (see `db.runtime.process`)."""

from db.runtime.process import main

main()
