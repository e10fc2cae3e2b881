"""The hash-chained journal (`chain`): events, the writer, verification."""

from service.journal.chain import (
           FORMAT,
           GENESIS,
           KINDS,
           TAIL_MISSING,
           Event,
           JournalWriter,
           Receipt,
           Row,
           Verification,
           append,
           append_many,
           canonical,
           check_rows,
           check_tail,
           recent_about,
           verify,
)

__all__ = ["FORMAT", "GENESIS", "KINDS", "TAIL_MISSING", "Event", "JournalWriter", "Receipt", "Row", "Verification",
           "append", "append_many", "canonical", "check_rows", "check_tail", "recent_about", "verify"]
