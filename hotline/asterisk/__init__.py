"""The only code that speaks Asterisk's protocols (AGI, AMI) and runs the local Asterisk."""
