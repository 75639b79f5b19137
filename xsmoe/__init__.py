"""The `xsmoe` command line: the one entry point of every role."""
