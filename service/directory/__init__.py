"""Directory: see the README code map."""
