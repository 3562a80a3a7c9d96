"""A refusal: the rules say no. Answered on `leads.rejected`, never retried."""

from contracts.topics import Reason


class Refused(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
