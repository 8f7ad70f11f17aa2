"""Tickets from outside the IVR: the main work-order platform, by file or HTTP."""
