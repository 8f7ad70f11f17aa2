"""Floor 3, ticket handling by number (dispatch, sign, return, close, rework, urge) and the
intake of tickets from the main work-order platform."""
