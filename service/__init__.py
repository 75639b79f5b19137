"""FastAPI service: recommendations, feedback, catalog, hot swap (issue 4)."""
