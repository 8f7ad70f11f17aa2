"""The 12345 hotline's shared core: configuration, CLI and the Asterisk protocol layer."""
