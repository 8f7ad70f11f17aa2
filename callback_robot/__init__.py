"""The callback robot: scheduled satisfaction surveys over AMI and FastAGI."""
