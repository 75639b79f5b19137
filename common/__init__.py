"""Contracts shared by service/ and workers/: settings and (later) the event schema."""
