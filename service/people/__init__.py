"""People pages and roles: what HR and admins read about a person, and the hr/auditor roles they grant."""
