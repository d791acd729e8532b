"""The `gb10-router` command line."""
