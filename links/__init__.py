"""Links to Asterisk built from the config: above telephony (which reads no config) and below
every flow, the console and the composition that open one."""
