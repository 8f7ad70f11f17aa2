"""Inbound call flows: the citizen calling the hotline, from greeting to ticket."""
