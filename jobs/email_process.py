"""``email-process``: parse an e-mail and record its metadata.

Subject: ``mail/{tenantId}/{subjectId}.eml`` (RFC 5322), parsed with the standard library.
Output (overwritten, so idempotent): ``mail/{tenantId}/{subjectId}.metadata.json``. The
message's Message-ID must match the job's ``messageId`` (the idempotency key is built from it),
otherwise the job fails with EMAIL_MESSAGE_ID_MISMATCH.
"""

from __future__ import annotations

import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from pydantic import Field, field_validator

from jobs.storage_names import MAIL, MAIL_MESSAGE
from shared.handlers import (
    ErrorCode,
    JobContext,
    JobType,
    Payload,
    PermanentJobError,
    ResultSummary,
    StorageName,
    format_utc,
)


def normalized_message_id(value: str) -> str:
    """One spelling per Message-ID (RFC 5322 section 3.6.4): no surrounding whitespace or angle brackets,
    the domain part (after the last ``@``) in lower case, as domains are case-insensitive; the local
    part keeps its case (it may be case-sensitive)."""
    bare = value.strip().removeprefix("<").removesuffix(">").strip()
    local, at, domain = bare.rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else bare


class EmailPayload(Payload):
    message_id: str = Field(alias="messageId", pattern=r"^[\x21-\x7e]{1,256}$")

    @field_validator("message_id", mode="before")
    @classmethod
    def _one_spelling(cls, value: object) -> object:
        # Before the pattern: "<abc@Example.COM>", " abc@example.com " and "abc@example.com" are one e-mail,
        # so they derive one idempotency key (one job) and one payload (a replay, not IDEMPOTENCY_KEY_REUSED).
        return normalized_message_id(value) if isinstance(value, str) else value


def idempotency_key(subject_id: uuid.UUID, payload: EmailPayload) -> str:
    return f"email-{payload.message_id}"


def _bare_id(value: str) -> str:
    return value.strip().strip("<>").strip()


def _addresses(message: EmailMessage, header: str) -> list[str]:
    return [addr for _, addr in getaddresses([str(v) for v in message.get_all(header, [])]) if addr]


def metadata(message: EmailMessage, size: int) -> dict[str, Any]:
    date = None
    if message["Date"]:
        try:
            date = format_utc(parsedate_to_datetime(str(message["Date"])))
        except (TypeError, ValueError):
            date = None
    attachments = [
        {"filename": part.get_filename(), "contentType": part.get_content_type(),
         "size": len(part.get_payload(decode=True) or b"")}
        for part in message.iter_attachments()
    ]
    body = message.get_body(preferencelist=("plain", "html"))
    return {
        "messageId": _bare_id(str(message["Message-ID"] or "")), "from": _addresses(message, "From"),
        "to": _addresses(message, "To"), "cc": _addresses(message, "Cc"), "subject": str(message["Subject"] or ""),
        "date": date, "inReplyTo": _bare_id(str(message["In-Reply-To"] or "")) or None,
        "attachments": attachments, "bodyCharacters": len(body.get_content()) if body is not None else 0,
        "sizeBytes": size,
    }


def output(subject_id: uuid.UUID, payload: EmailPayload) -> tuple[StorageName, str]:
    """The e-mail's metadata: ``mail/{tenantId}/{subjectId}.metadata.json``."""
    return MAIL, f"{subject_id}.metadata.json"


async def handle(ctx: JobContext[EmailPayload]) -> ResultSummary:
    subject = ctx.contract.subject_id
    raw = await ctx.files.read_bytes(ctx.container(MAIL_MESSAGE.container), MAIL_MESSAGE.name(subject))
    await ctx.report_progress(30, "message read")  # also where a cancel request takes effect
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(message, EmailMessage) or not message["Message-ID"]:
        raise PermanentJobError(ErrorCode.SUBJECT_INVALID, "the e-mail has no Message-ID header")
    found = normalized_message_id(str(message["Message-ID"]))
    if found != ctx.payload.message_id:
        raise PermanentJobError(ErrorCode.EMAIL_MESSAGE_ID_MISMATCH, "Message-ID differs from messageId")
    info = metadata(message, len(raw))
    container, name = output(subject, ctx.payload)
    await ctx.files.write_json(ctx.container(container), name, info)
    return {"messageId": found, "from": info["from"][:1], "subject": info["subject"][:200],
            "recipients": len(info["to"]) + len(info["cc"]), "attachments": len(info["attachments"])}


JOB_TYPE: JobType[EmailPayload] = JobType(
    name="email-process", payload_model=EmailPayload, idempotency_key=idempotency_key, max_attempts=5,
    handler=handle, containers=(MAIL,), subject=MAIL_MESSAGE,
    typical_seconds=0.5,  # one blob read, a parse, one blob write: under 0.1 s on Azurite
    output=output,
)
