"""The hotline's HTTP side: the platform's import endpoint and the supervisors' pages."""
