"""Sending SMS: rule actions from the send queue and test sends from the API, one path.

- `record`: the life of one SMS (its record, states, and the side effects each change owes).
- `attempts`: handing one SMS to its provider (retries, unknown answers, look-ups, deadline).
- `batch`: a batch of SMS from claim to record.
"""

from __future__ import annotations

from .batch import ConnectorUnavailable, RuleAction, send_rule_actions, test_send
from .outcome import Outcome

__all__ = ["ConnectorUnavailable", "Outcome", "RuleAction", "send_rule_actions", "test_send"]
