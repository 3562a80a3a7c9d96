"""Message contract v1 of the lead lifecycle service (see shared/spec/contracts.md).

Everything a producer or consumer of the service needs: the pydantic models of
every message, topic names and reason codes. Imports nothing from `services`.
"""

from contracts.actions import PARTNER_ACTION, PartnerAction
from contracts.commands import COMMAND, Command
from contracts.events import LeadEvent, LeadSnapshot
from contracts.inbound import InboundLead
from contracts.notifications import NotificationRequested
from contracts.performance import PartnerPerformance, PerformanceUpdated
from contracts.profiles import PartnerProfile
from contracts.rejected import MessageRejected
from contracts.topics import EventType, NotificationTemplate, Reason, Topic

__all__ = [
    "COMMAND",
    "PARTNER_ACTION",
    "Command",
    "EventType",
    "InboundLead",
    "LeadEvent",
    "LeadSnapshot",
    "MessageRejected",
    "NotificationRequested",
    "NotificationTemplate",
    "PartnerAction",
    "PartnerPerformance",
    "PartnerProfile",
    "PerformanceUpdated",
    "Reason",
    "Topic",
]
