"""E-mail as a notifier: one message per alert change, through an SMTP server (STARTTLS
unless told otherwise, a login when a username is set)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from buildcoord.models import Alert
from buildcoord.notifier_config import NotifierSettings
from buildcoord.notifiers.github import issue_body
from buildcoord.notifiers.http import DeliveryFailed
from buildcoord.notifiers.messages import slack_text


def message(notifier: NotifierSettings, alert: Alert, event: str) -> EmailMessage:
    """The e-mail for one alert change: the one-line text as its subject."""
    mail = EmailMessage()
    mail["Subject"] = f"[buildcoord] {slack_text(alert, event)}"[:250]
    mail["From"] = notifier.sender
    mail["To"] = ", ".join(notifier.recipients)
    mail.set_content(issue_body(alert, event))
    return mail


def send_mail(notifier: NotifierSettings, alert: Alert, event: str, password: str) -> None:
    """Send the e-mail; DeliveryFailed with a reason that never holds the password."""
    try:
        with smtplib.SMTP(notifier.host, notifier.port, timeout=notifier.timeout_seconds) as smtp:
            smtp.ehlo()
            if notifier.starttls:
                if not smtp.has_extn("starttls"):
                    raise DeliveryFailed("the mail server does not offer STARTTLS")
                smtp.starttls(context=ssl.create_default_context())
            if notifier.username:
                smtp.login(notifier.username, password)
            smtp.send_message(message(notifier, alert, event))
    except smtplib.SMTPNotSupportedError:
        raise DeliveryFailed("the mail server does not offer a login") from None
    except smtplib.SMTPAuthenticationError as error:
        raise DeliveryFailed(f"the mail server refused the login: {error.smtp_code}") from None
    except smtplib.SMTPResponseException as error:
        raw = error.smtp_error
        reason = (raw.decode(errors="replace") if isinstance(raw, bytes) else raw)[:200]
        raise DeliveryFailed(f"the mail server refused: {error.smtp_code} {reason}") from None
    except smtplib.SMTPRecipientsRefused:
        raise DeliveryFailed("the mail server refused every recipient") from None
    except TimeoutError:
        raise DeliveryFailed(f"no answer within {notifier.timeout_seconds:g} s") from None
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryFailed(f"cannot send mail: {type(error).__name__}: {error}"[:300]) from None
