"""Sending SMS: rule actions from the send queue and test sends from the API, one path.

- `record`: the life of one SMS (its record, states, and the side effects each change owes).
- `attempts`: handing one SMS to its provider (retries, unknown answers, look-ups, deadline).
- `batch`: a batch of SMS from claim to record.

The names below are imported on first use: the fallback, the receipts and the sweep need only
`record` (and `emails`), not the sending machinery with every provider and the limits, and
their cold starts do not wait for it (README, Performance).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batch import ConnectorUnavailable, RuleAction, send_rule_actions, test_send
    from .outcome import Outcome

__all__ = ["ConnectorUnavailable", "Outcome", "RuleAction", "send_rule_actions", "test_send"]


def __getattr__(name: str) -> Any:
    if name == "Outcome":
        from .outcome import Outcome

        return Outcome
    if name in __all__:
        from . import batch

        return getattr(batch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
