"""Access reviews: campaigns over grants, e-mailed links for reviewers, decisions, reminders, the deadline."""
