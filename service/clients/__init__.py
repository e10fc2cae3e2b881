"""Clients: see the README code map."""
