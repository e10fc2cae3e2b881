"""Training: see the README code map."""
