"""Identity: see the README code map."""
