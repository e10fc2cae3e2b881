"""The review e-mails: what each says, in plain text and HTML (composed here, queued in the outbox by the caller)."""

import html
from datetime import UTC, datetime


def at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _html(paragraphs: list[str], link: str | None = None, label: str = "Open your review") -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    if link:
        body += f'<p><a href="{html.escape(link, quote=True)}">{html.escape(label)}</a></p>'
    return f'<!doctype html><html lang="en"><body>{body}<p>-- Gatehouse</p></body></html>'


def _text(paragraphs: list[str], link: str | None = None) -> str:
    lines = "\n\n".join(paragraphs)
    return lines + (f"\n\n{link}" if link else "") + "\n\n-- Gatehouse\n"


def request(name: str, people: int, grants: int, key: str, due_at: datetime, link: str) -> tuple[str, str, str]:
    """(subject, text, html) asking a reviewer to review."""
    subject = f"Access review {key}: {people} people, {grants} grants to review by {at(due_at)}"
    paragraphs = [f"Hello {name},",
                  f"please review the access of {people} people ({grants} grants) by {at(due_at)}. Approve what "
                  "they still need and revoke the rest; what is not decided by then is revoked.",
                  "Opening the link changes nothing; each decision is a button on the page."]
    return subject, _text(paragraphs, link), _html(paragraphs, link)


def reminder(name: str, open_items: int, key: str, due_at: datetime, link: str, *, days: int,
             escalated: bool) -> tuple[str, str, str]:
    subject = f"Reminder: {open_items} access review items open until {at(due_at)} ({key})"
    paragraphs = [f"Hello {name},",
                  f"{open_items} items of access review {key} wait for your decision; the review closes at "
                  f"{at(due_at)} (in about {days} day{'s' if days != 1 else ''}). Undecided access is revoked then."]
    if escalated:
        paragraphs.append("Your manager is copied on this reminder.")
    return subject, _text(paragraphs, link), _html(paragraphs, link)


def missed(name: str, key: str, resource: str, *, reviewer: bool) -> tuple[str, str, str]:
    subject = f"Access revoked: review {key} was not completed"
    who = "you did not review" if reviewer else "your manager did not review"
    paragraphs = [f"Hello {name},", f"{who} access to {resource} in review {key} by its deadline, so it is revoked. "
                  "It comes back only through a new grant."]
    return subject, _text(paragraphs), _html(paragraphs)


def held(key: str, undecided: int, total: int, link: str) -> tuple[str, str, str]:
    subject = f"Access review {key} held: {undecided} of {total} items undecided at the deadline"
    paragraphs = ["Hello,", f"access review {key} reached its deadline with {undecided} of its {total} items "
                  "undecided, more than the guard allows. Nothing was revoked: an admin confirms the revocations "
                  "(security key) or extends the deadline in the console."]
    return subject, _text(paragraphs, link), _html(paragraphs, link, "Open the campaign")
