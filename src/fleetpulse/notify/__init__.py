"""Notifications: matching events against rules and delivering them to webhooks and e-mail."""

from fleetpulse.notify.errors import DeliveryError
from fleetpulse.notify.notifier import Notifier, NotifyDeadLetter
from fleetpulse.notify.rulebook import RuleBook, RuleConflictError
from fleetpulse.notify.rules import CompiledRule, compile_rule
from fleetpulse.notify.webhook import SIGNATURE_HEADER, sign_body

__all__ = [
    "CompiledRule",
    "DeliveryError",
    "Notifier",
    "NotifyDeadLetter",
    "RuleBook",
    "RuleConflictError",
    "SIGNATURE_HEADER",
    "compile_rule",
    "sign_body",
]
