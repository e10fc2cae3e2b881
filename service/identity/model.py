"""What every source says about a person, with no I/O: the attributes a source may set, the primary e-mail.

Pure, so that the planners (directory/plan.py) use it and stay pure; import-linter keeps it so.
"""

# The attributes a source may set, in the order changes are reported.
FIELDS = ("user_name", "given_name", "family_name", "formatted_name", "display_name", "emails", "employee_number",
          "department", "organization", "title", "manager", "active")


def primary_email(emails) -> str | None:
    """The primary e-mail, else the first one."""
    chosen = next((e for e in emails if e.get("primary")), emails[0] if emails else None)
    return chosen.get("value") if chosen else None
