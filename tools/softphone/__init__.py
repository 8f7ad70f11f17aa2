"""A SIP softphone that plays a citizen: tests, the demo and the load benchmark use it."""
