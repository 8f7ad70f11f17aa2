"""Scale-out (issue 22): one config renders every host's files — Kamailio, the Asterisk
nodes, each node's HAProxy — and the real tools check them (`kamailio -c`, `haproxy -c`)."""
