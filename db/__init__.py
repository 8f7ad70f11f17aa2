"""The ticket store: models, sessions, migrations, the store runtime (gateway, spool, store
process) and the queries more than one feature shares; each feature keeps its own queries."""
