"""The one-machine stack: which stand-ins run, on which ports, and the settings pointing at them."""
