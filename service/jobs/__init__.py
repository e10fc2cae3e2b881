"""Scheduled jobs: the registry and runner (`registry`), their run records (`store`), the worker process (`worker`)."""
