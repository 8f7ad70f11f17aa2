"""A private hotline on loopback for the tests and the benchmarks.

Free ports, a config file in a folder of its own, a throw-away PostgreSQL and
the console served in a thread: what a test and a bench both need, kept here so
that `bench/` never imports test code.
"""
