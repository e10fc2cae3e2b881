"""Outbound enforcement: the outbox the grants trigger fills, delivered to the targets by the worker."""
