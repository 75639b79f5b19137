"""Background worker: stream consumer, trainer, publisher (issue 5)."""
