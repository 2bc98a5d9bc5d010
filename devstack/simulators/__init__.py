"""Local simulators of 46elks, Telnyx and Twilio, one HTTP server speaking all three wire formats.

`server` holds the server, the request log, scripted answers, faults and the receipts; `elks46`,
`telnyx` and `twilio` each play one provider (sends, look-ups, account checks, receipts, costs,
segment counting and errors in its own format); `base` what they share. Import from here:

    from devstack.simulators import ProviderSimulator, Answer, MAGIC
"""

from .base import KINDS, OUTCOMES, TAKEN_FAULTS, Answer, Callback, Received
from .server import MAGIC, PROVIDERS, ProviderSimulator
from .twilio import TWILIO_FROM_MAGIC, TWILIO_MAGIC

__all__ = [
    "KINDS",
    "MAGIC",
    "OUTCOMES",
    "PROVIDERS",
    "TAKEN_FAULTS",
    "TWILIO_FROM_MAGIC",
    "TWILIO_MAGIC",
    "Answer",
    "Callback",
    "ProviderSimulator",
    "Received",
]
