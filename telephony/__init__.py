"""Floor 2, telephony: the only code that speaks Asterisk's protocols (AGI, FastAGI, AMI).

It imports nothing of ours, so a flow can be read without the wire and the
wire can be tested without a flow. `menu.py` is the one key collector both
call flows use.
"""
