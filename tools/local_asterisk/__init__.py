"""The local Asterisk: Debian's Asterisk 22 provisioned into a cached root, the site's
configuration rendered from config.yaml, and its start, stop and CLI."""
