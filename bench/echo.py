"""The floor of the preview's per-call figure: our resolver and Lambda entry point (body checks,
validation, JSON answer) around a route that validates a one-field body and returns it."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import Router
from pydantic import BaseModel

from sms_connector.api import create_app, lambda_handler

router = Router()


class Echo(BaseModel):
    message: str


@router.post("/echo")
def echo(body: Annotated[Echo, Body()]) -> Echo:
    return body


handler = lambda_handler(create_app(router))
