"""The ticket store: models, sessions, queries and migrations (the only SQL in the project)."""
