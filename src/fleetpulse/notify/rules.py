"""Notification rules: which events a rule sends, checked without I/O.

A rule matches an event when every filter that is set agrees: event type, minimum
severity, vehicle, geofence and time of day. The time of day is the event's own time
(``ts_ms``) in the rule's time zone, so a replayed event is judged by when it happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleetpulse.config import NotifyRule
from fleetpulse.errors import ConfigError
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import EVENT_TYPES, SEVERITY_ORDER

MINUTES_PER_DAY = 24 * 60
# Rule ids are path segments of DELETE /v1/notify/rules/{id}, so a '/' is rejected.
RULE_ID_MAX_LENGTH = 64

_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITY_ORDER)}


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A validated rule, with its filters prepared for matching.

    ``window`` is (from, to) in minutes after midnight, or None for all day.
    """

    rule: NotifyRule
    event_types: frozenset[str]
    min_rank: int
    vehicles: frozenset[str]
    geofences: frozenset[str]
    zone: ZoneInfo
    window: tuple[int, int] | None

    @property
    def id(self) -> str:
        """The rule's id."""
        return self.rule.id

    def matches(self, event: Event) -> bool:
        """Return whether this rule sends ``event``."""
        if self.event_types and event.type not in self.event_types:
            return False
        if _SEVERITY_RANK.get(event.severity, 0) < self.min_rank:
            return False
        if self.vehicles and event.device_id not in self.vehicles:
            return False
        if self.geofences:
            fences = event.details.get("geofences")
            if not isinstance(fences, list) or self.geofences.isdisjoint(fences):
                return False
        return self.window is None or self._in_window(event.ts_ms)

    def _in_window(self, ts_ms: int) -> bool:
        assert self.window is not None
        local = datetime.fromtimestamp(ts_ms / 1000, tz=self.zone)
        minute = local.hour * 60 + local.minute
        start, end = self.window
        if start <= end:
            return start <= minute < end
        # The window wraps past midnight, such as 22:00 to 06:00.
        return minute >= start or minute < end


def compile_rule(rule: NotifyRule) -> CompiledRule:
    """Validate a rule and prepare it. Raises ConfigError naming the rule and the bad key."""
    where = f"notify rule {rule.id!r}"
    if not 1 <= len(rule.id) <= RULE_ID_MAX_LENGTH or "/" in rule.id:
        raise ConfigError(f"{where}: id must be 1 to {RULE_ID_MAX_LENGTH} characters without '/'")
    unknown = sorted(set(rule.event_types) - set(EVENT_TYPES))
    if unknown:
        raise ConfigError(
            f"{where}: unknown event_types {unknown}; use names from: {', '.join(EVENT_TYPES)}"
        )
    if not rule.webhook_url and not rule.email_to:
        raise ConfigError(f"{where}: set webhook_url, email_to or both, or it sends nothing")
    if rule.webhook_url and not rule.webhook_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: webhook_url {rule.webhook_url!r} must start with http(s)://")
    if rule.throttle_s < 0:
        raise ConfigError(f"{where}: throttle_s must be 0 or more, not {rule.throttle_s}")
    try:
        zone = ZoneInfo(rule.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"{where}: timezone {rule.timezone!r} is not an IANA time zone such as Europe/Berlin"
        ) from exc
    return CompiledRule(
        rule=rule,
        event_types=frozenset(rule.event_types),
        min_rank=_SEVERITY_RANK[rule.min_severity],
        vehicles=frozenset(rule.vehicles),
        geofences=frozenset(rule.geofences),
        zone=zone,
        window=_parse_window(where, rule.active_from, rule.active_to),
    )


def _parse_window(where: str, active_from: str, active_to: str) -> tuple[int, int] | None:
    if not active_from and not active_to:
        return None
    if not active_from or not active_to:
        raise ConfigError(f"{where}: set both active_from and active_to, or neither")
    start = _parse_minute(where, "active_from", active_from)
    end = _parse_minute(where, "active_to", active_to)
    if start == end:
        raise ConfigError(f"{where}: active_from and active_to are equal; leave both empty")
    return start, end


def _parse_minute(where: str, key: str, text: str) -> int:
    hour, _, minute = text.partition(":")
    valid = len(hour) == 2 and len(minute) == 2 and hour.isdigit() and minute.isdigit()
    if not valid or int(hour) > 23 or int(minute) > 59:
        raise ConfigError(f"{where}: {key} {text!r} must be a time HH:MM, such as 22:00")
    return int(hour) * 60 + int(minute)
