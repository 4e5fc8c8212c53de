"""E-mail delivery over SMTP with ``smtplib``, run in a worker thread.

The password is sent to the server only, and never logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

from fleetpulse.config import NotifySettings
from fleetpulse.notify.errors import DeliveryError

# SMTP replies from 500 up are permanent failures, so the same message would fail again.
SMTP_PERMANENT_FROM = 500


async def send_email(settings: NotifySettings, message: EmailMessage) -> None:
    """Send ``message`` through ``[notify] smtp_host``. Raises DeliveryError on failure."""
    await asyncio.to_thread(_send, settings, message)


def _send(settings: NotifySettings, message: EmailMessage) -> None:
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        # The reply text comes from the server, so it does not contain the password.
        retriable = exc.smtp_code < SMTP_PERMANENT_FROM
        raise DeliveryError(
            f"SMTP {where} replied {exc.smtp_code}: {exc.smtp_error!r}", retriable=retriable
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(
            f"SMTP {where} rejected every recipient: {sorted(exc.recipients)}", retriable=False
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {where} failed: {exc!r}", retriable=True) from exc
