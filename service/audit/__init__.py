"""The auditor's workspace: journal search, the revocation log, a person's timeline, compliance, exports, charts.

Read-only by construction: no route here writes anything but the refusals the guards journal.
"""
