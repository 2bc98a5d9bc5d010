"""The message preview for the rule editor: encoding, characters and segments as a provider
will count them, and the characters that forced UCS-2 (so the editor can offer to replace
them). No AWS call, no connector: it needs the caller's token, and nothing else.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import Router

from .. import segments
from ..api import responses, tenant_of
from ..models.preview import PreviewIn, PreviewOut
from ..text import MAX_MESSAGE_CHARS

router = Router()


@router.post(
    "/preview",
    summary="Encoding and segments of a message, as the provider will count them",
    operation_id="preview",
    tags=["sending"],
    responses=responses(200, "The message's encoding, length and segments", body=True),
)
def preview(body: Annotated[PreviewIn, Body()]) -> PreviewOut:
    tenant_of(router)  # a token that names no tenant is refused here as everywhere (403)
    counted = segments.count(body.message, body.provider)
    if body.provider:
        too_long = segments.too_long_for(body.provider, body.message) is not None
    else:  # no provider: the service's own limit for a rule action's message
        too_long = counted.characters > MAX_MESSAGE_CHARS
    return PreviewOut(
        encoding=counted.encoding,  # type: ignore[arg-type]
        characters=counted.characters,
        segments=counted.parts,
        tooLong=too_long,
        ucs2Characters=list(counted.ucs2_characters),
    )
