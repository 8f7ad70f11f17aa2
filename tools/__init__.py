"""Beside the hotline: the local Asterisk, the citizen softphone and the demo city.

Tools serve development, tests, demos and benchmarks; the running hotline
never imports them (the CLI does, to expose them as sub-commands).
"""
