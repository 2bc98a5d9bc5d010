"""Connector health: credentials checked with the provider's free account endpoint
(providers.md 9), and what the answer teaches about money.

- A verdict is the provider's: accepted (a trial account's credentials too, with a note), or
  refused in words a user can act on. A provider that cannot be asked (no connection, no
  answer in PROVIDER_READ_TIMEOUT, a 5xx or 429, a page that is not its API's) is
  `ProviderUnavailable` (503): never a silent pass, never a verdict.
- A balance at or below a threshold of its currency is a warning in the connector's
  `lastError` and error log (`LOW_BALANCE`). A clean check writes nothing there: it must not
  hide a real error.
- A 46elks account's currency is kept on the connector (`accountCurrency`): 46elks answers
  carry amounts but no currency, and the sender counts costs in it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from . import clock, connector_store, dynamo, error_log, stats
from .errors import InvalidField, ProviderUnavailable
from .providers import ADAPTERS, ProviderError
from .providers.base import AccountCheck, amount_text

logger = Logger()

NAMES = {"46elks": "46elks", "telnyx": "Telnyx", "twilio": "Twilio"}
CURRENCY_FIELD = "accountCurrency"

# A warning below about a hundred SMS' worth: 46elks charges about 0.35-0.50 SEK per SMS,
# Twilio and Telnyx from under a cent to about 0.10 USD abroad. In any other currency only an
# empty (or negative) balance is warned about: we do not guess what its amounts are worth.
LOW_BALANCE = {
    "SEK": Decimal(50),
    "NOK": Decimal(50),
    "DKK": Decimal(35),
    "EUR": Decimal(5),
    "USD": Decimal(5),
    "GBP": Decimal(4),
}


def check(provider: str, credentials: dict[str, str], deadline: float) -> AccountCheck:
    """The provider's verdict on `credentials`; ProviderUnavailable when it could not be asked."""
    try:
        result = ADAPTERS[provider].account(credentials, deadline)
    except ProviderError as exc:
        logger.warning("credential check without a verdict", extra={"provider": provider, "error_code": exc.code})
        raise ProviderUnavailable(f"{NAMES[provider]} could not check the credentials: {exc.message}") from None
    logger.info("credentials checked", extra={"provider": provider, "ok": result.ok, "trial": result.trial})
    return result


def require_accepted(provider: str, credentials: dict[str, str], deadline: float) -> AccountCheck:
    """The check for a create or update with `"verify": true`: refused credentials are a 422 on
    `credentials`, and an unreachable provider a 503, both before anything is saved."""
    try:
        result = check(provider, credentials, deadline)
    except ProviderUnavailable as exc:
        raise ProviderUnavailable(f"{exc}; nothing was saved, try again shortly") from None
    if not result.ok:
        raise InvalidField("credentials", f"rejected by {NAMES[provider]}: {result.detail}")
    return result


def low_balance(provider: str, result: AccountCheck) -> str | None:
    """The warning a low balance deserves, or None."""
    left = result.available if result.available is not None else result.balance
    if not result.ok or left is None:
        return None
    currency = result.currency or ""
    where = NAMES[provider]
    if left <= 0:
        return (
            f"no credit left at {where} ({amount_text(left)} {currency}".rstrip()
            + "): SMS will fail until the account is topped up"
        )
    threshold = LOW_BALANCE.get(currency)
    if threshold is None or left >= threshold:
        return None
    return (
        f"low balance at {where}: {amount_text(left)} {currency} left (we warn below "
        f"{amount_text(threshold)} {currency}); top up so that alerts keep going"
    )


def detail(provider: str, result: AccountCheck) -> str:
    """The verdict as the verify route words it: the provider's, and a low balance if any."""
    warning = low_balance(provider, result)
    return f"{result.detail}; {warning}" if warning else result.detail


def remember(connector: dict[str, Any], result: AccountCheck) -> None:
    """Keep what a check taught about a stored connector: a 46elks account's currency, and a
    low balance as a warning (in `lastError`, through the counters' own transaction items, and
    in the error log)."""
    connector_id = str(connector["id"])
    currency = result.currency
    learned = connector["provider"] == "46elks" and currency and connector.get(CURRENCY_FIELD) != currency
    if learned and not dynamo.update_if(
        connector_store.key(connector_id),
        sets={CURRENCY_FIELD: currency},
        condition="attribute_exists(pk) AND tenantId = :tenant AND attribute_not_exists(deleting)",
        condition_values={":tenant": str(connector["tenantId"])},
    ):
        return  # deleted meanwhile: nothing to keep
    warning = low_balance(str(connector["provider"]), result)
    if not warning:
        return
    at = clock.iso(clock.now())
    items = stats.updates(connector_id, [stats.Delta(at=at, last_error=warning)])
    entry = error_log.entry_item(
        connector_id,
        at=at,
        level="warning",
        message=warning,
        provider=str(connector["provider"]),
        recipient=None,
        error_code="low_balance",
        action_id=None,
        kind="sms",
    )
    items.append({"Put": {"TableName": dynamo.table(), "Item": entry}})
    try:
        dynamo.client().transact_write_items(TransactItems=items)
    except dynamo.client().exceptions.TransactionCanceledException:
        pass  # the connector is being deleted: its counters are not recreated
