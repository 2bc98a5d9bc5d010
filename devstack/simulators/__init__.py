"""Local simulators of 46elks, Telnyx and Twilio, one HTTP server speaking all three wire formats.

`server` holds the server, the request log, scripted answers and faults; `elks46`, `telnyx` and
`twilio` each play one provider. Import from here:

    from devstack.simulators import ProviderSimulator, Answer, MAGIC
"""

from .base import Answer, Received
from .server import MAGIC, PROVIDERS, ProviderSimulator
from .twilio import TWILIO_MAGIC

__all__ = ["MAGIC", "PROVIDERS", "TWILIO_MAGIC", "Answer", "ProviderSimulator", "Received"]
