"""The service's settings, read from the environment once and cached."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    table_name: str = Field(alias="TABLE_NAME")
    tenant_claim: str = Field(default="tenant_id", alias="TENANT_CLAIM")
    secret_prefix: str = Field(default="sms-connector/", alias="SECRET_PREFIX")
    secret_recovery_days: int = Field(default=7, ge=7, le=30, alias="SECRET_RECOVERY_DAYS")
    send_queue_url: str = Field(default="", alias="SEND_QUEUE_URL")
    fallback_queue_url: str = Field(default="", alias="FALLBACK_QUEUE_URL")
    log_retention_days: int = Field(default=90, ge=1, alias="LOG_RETENTION_DAYS")
    elks46_api_url: str = Field(default="https://api.46elks.com", alias="ELKS46_API_URL")
    telnyx_api_url: str = Field(default="https://api.telnyx.com", alias="TELNYX_API_URL")
    twilio_api_url: str = Field(default="https://api.twilio.com", alias="TWILIO_API_URL")
    # Enough for a full batch (10 actions x 3 recipients) in about one provider round trip.
    # Seconds to wait for a provider's answer; a timeout is retried (providers.md 5.3 explains
    # the duplicate risk, which is why it is generous).
    provider_read_timeout: float = Field(default=10.0, gt=0, le=60, alias="PROVIDER_READ_TIMEOUT")
    send_concurrency: int = Field(default=32, ge=1, le=64, alias="SEND_CONCURRENCY")
    # The public origin of the receipt routes; without it no receipt is asked for.
    public_api_url: str = Field(default="", alias="PUBLIC_API_URL")
    receipt_deadline_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60, alias="RECEIPT_DEADLINE_MINUTES")
    email_identity: str = Field(default="", alias="EMAIL_IDENTITY")
    test_sends_per_hour: int = Field(default=10, ge=0, le=10000, alias="TEST_SENDS_PER_HOUR")


@cache
def settings() -> Settings:
    return Settings.model_validate(dict(os.environ))


def reset() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    settings.cache_clear()
