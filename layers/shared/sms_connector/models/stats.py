"""The statistics panel's and the error log's models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from .common import Timestamp


class LastError(BaseModel, defer_build=True):
    message: str
    at: Timestamp


class Cost(BaseModel, defer_build=True):
    amount: str = Field(description="a decimal amount, as the providers report it")
    currency: str | None = Field(description="ISO 4217; null for 46elks before its account currency is known")


class Day(BaseModel, defer_build=True):
    date: Annotated[str, WithJsonSchema({"type": "string", "format": "date"})] = Field(description="YYYY-MM-DD (UTC)")
    sent: int
    failed: int


class StatsOut(BaseModel, defer_build=True):
    totalSent: int = Field(description="SMS accepted by the provider, one per recipient")
    totalFails: int = Field(description="failed sends, one per recipient per rule action, after retries")
    sentThisMonth: int = Field(description="totalSent within the current calendar month (UTC)")
    attempts: int = Field(description="totalSent + totalFails")
    successRate: float | None = Field(description="totalSent / attempts in percent; null with no attempts")
    lastSentAt: Timestamp | None
    lastFailedAt: Timestamp | None
    lastError: LastError | None = Field(description="the latest error or warning")
    fallbackEmailsSent: int = Field(description="backup emails SES accepted")
    fallbackEmailsFailed: int = Field(description="backup emails that could not be sent")
    totalUnknown: int = Field(description="SMS whose outcome could not be known (the request left, no answer came)")
    totalDelivered: int = Field(description="SMS with a final receipt saying delivered")
    totalUndelivered: int = Field(description="SMS with a final receipt saying not delivered")
    pendingReceipts: int = Field(description="sent SMS still waiting for a final receipt, within the deadline")
    totalNoReceipt: int = Field(description="sent SMS whose receipt deadline passed with no final receipt")
    deliveryRate: float | None = Field(
        description="totalDelivered / (totalDelivered + totalUndelivered) in percent; null before a final receipt"
    )
    lastDeliveredAt: Timestamp | None
    totalSuppressed: int = Field(description="SMS not sent because of limits or an opt-out")
    segmentsThisMonth: int = Field(description="SMS segments sent this month, as the providers counted them")
    costThisMonth: list[Cost] = Field(description="the providers' reported cost this month, per currency")
    daily: list[Day] = Field(description="this month's sent and failed SMS per day (UTC), for the panel's chart")


class LogEntry(BaseModel, defer_build=True):
    at: Timestamp
    level: Literal["error", "warning"]
    message: str
    recipient: str | None = Field(description="masked phone number")
    provider: str | None
    errorCode: str | None
    actionId: str | None
    kind: str | None = Field(default=None, description="sms or email (the fallback)")


class LogPage(BaseModel, defer_build=True):
    items: list[LogEntry]
    nextToken: str | None
