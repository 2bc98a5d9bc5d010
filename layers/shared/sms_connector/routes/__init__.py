"""The HTTP routes, one router per concern; each API function includes the ones it serves."""
