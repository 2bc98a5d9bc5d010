"""Who email connectors may send as: the SES identity the operator handed out (the template's
`EmailIdentity`: a domain, whose every address may send, or one address), verified for
sending in SES. A tenant can never send as an identity the operator did not hand out, even
one verified in the account for someone else."""

from __future__ import annotations

from typing import Any

from . import aws
from .config import settings
from .errors import InvalidField, Unavailable


def allowed(address: str, identity: str | None = None) -> bool:
    """Whether `address` belongs to the identity (an address itself, or one at the domain)."""
    identity = (identity if identity is not None else settings().email_identity).strip().lower()
    address = address.strip().lower()
    if not identity:
        return False
    if "@" in identity:
        return address == identity
    return address.rpartition("@")[2] == identity


def check(address: str) -> None:
    """422 on `from` unless `address` may send: it belongs to the identity, which SES reports
    verified for sending; 503 when SES cannot say."""
    identity = settings().email_identity
    if not allowed(address, identity):
        where = f"an address at {identity}" if "@" not in identity else identity
        raise InvalidField("from", f"must be {where}: the SES identity this service may send from")
    client: Any = aws.client("sesv2")
    try:
        answer = client.get_email_identity(EmailIdentity=identity)
    except client.exceptions.NotFoundException:
        raise InvalidField("from", f"cannot send yet: {identity} is not set up in SES (ask the operator)") from None
    except Exception as exc:
        raise Unavailable("SES could not say whether the sender is verified; try again") from exc
    # SES says both; moto (the local stack) fills only VerificationStatus.
    if not (answer.get("VerifiedForSendingStatus") or answer.get("VerificationStatus") == "SUCCESS"):
        raise InvalidField("from", f"cannot send yet: {identity} is not verified for sending in SES (ask the operator)")
