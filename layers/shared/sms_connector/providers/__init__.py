"""One adapter per SMS provider behind one small interface (`base.Provider`)."""

from __future__ import annotations

from .base import Accepted, Outbound, Provider, ProviderError
from .elks46 import Elks46
from .telnyx import Telnyx
from .twilio import Twilio

ADAPTERS: dict[str, Provider] = {"46elks": Elks46(), "telnyx": Telnyx(), "twilio": Twilio()}

__all__ = ["ADAPTERS", "Accepted", "Outbound", "Provider", "ProviderError"]
