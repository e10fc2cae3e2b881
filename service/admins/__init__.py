"""Admins: see the README code map."""
