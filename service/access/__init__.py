"""Access: see the README code map."""
