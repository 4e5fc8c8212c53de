"""Notification endpoints: the rules (list, add, delete) and the failed deliveries.

A rule's ``webhook_secret`` is accepted but never returned. Responses show only whether
one is set, in ``webhook_secret_set``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetpulse.api.errors import ApiError
from fleetpulse.api.params import parse_limit
from fleetpulse.api.render import encoder, iso_ms
from fleetpulse.config import NotifyRule
from fleetpulse.errors import ConfigError
from fleetpulse.notify.notifier import Notifier
from fleetpulse.notify.rulebook import RuleConflictError
from fleetpulse.notify.rules import CompiledRule
from fleetpulse.notify.webhook import redact_url

DEAD_LETTERS_DEFAULT_LIMIT = 100
# The notifier keeps at most [notify] max_dead_letters, and this bounds one response.
DEAD_LETTERS_MAX_LIMIT = 10_000
# A rule is a few hundred bytes; 64 KiB leaves room for long lists of vehicles.
MAX_RULE_BYTES = 65_536

_rule_decoder = msgspec.json.Decoder(NotifyRule)


def rule_json(compiled: CompiledRule, source: str) -> dict[str, Any]:
    """Render a rule without its secret, with ``source`` ``config`` or ``api``."""
    body: dict[str, Any] = msgspec.structs.asdict(compiled.rule)
    body["webhook_secret_set"] = bool(body.pop("webhook_secret"))
    if body.get("webhook_url"):
        body["webhook_url"] = redact_url(body["webhook_url"])
    body["source"] = source
    return body


def rule_routes(notifier: Notifier | None) -> list[Route]:
    """Build ``/v1/notify/rules``, ``/v1/notify/rules/{rule_id}`` and the dead-letter list.

    Without a notifier every route responds with 503, because only a process that runs the
    processor sends notifications.
    """

    def running() -> Notifier:
        if notifier is None:
            raise ApiError(
                503, "unavailable", "notifications run only in `fleetpulse run`, not here"
            )
        return notifier

    async def list_rules(request: Request) -> Response:
        book = running().rulebook
        rules = [rule_json(rule, book.source(rule.id)) for rule in book.rules()]
        return _json({"count": len(rules), "rules": rules})

    async def add_rule(request: Request) -> Response:
        book = running().rulebook
        raw = await request.body()
        if len(raw) > MAX_RULE_BYTES:
            raise ApiError(413, "too_large", f"a rule is at most {MAX_RULE_BYTES} bytes")
        try:
            rule = _rule_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise ApiError(400, "invalid_rule", f"invalid notify rule: {exc}") from exc
        try:
            compiled = book.add(rule)
        except RuleConflictError as exc:
            raise ApiError(409, "conflict", str(exc)) from exc
        except ConfigError as exc:
            raise ApiError(400, "invalid_rule", str(exc)) from exc
        return _json(rule_json(compiled, book.source(rule.id)), status=201)

    async def delete_rule(request: Request) -> Response:
        active = running()
        rule_id = request.path_params["rule_id"]
        try:
            active.rulebook.delete(rule_id)
        except KeyError as exc:
            raise ApiError(404, "not_found", f"no notify rule with id {rule_id!r}") from exc
        except RuleConflictError as exc:
            raise ApiError(409, "conflict", str(exc)) from exc
        active.forget_rule(rule_id)
        return Response(status_code=204)

    async def list_dead_letters(request: Request) -> Response:
        limit = parse_limit(request, DEAD_LETTERS_DEFAULT_LIMIT, DEAD_LETTERS_MAX_LIMIT)
        letters = []
        for letter in running().dead_letters(limit):
            item: dict[str, Any] = msgspec.structs.asdict(letter)
            item["failed_at"] = iso_ms(letter.failed_at_ms)
            letters.append(item)
        return _json({"count": len(letters), "dead_letters": letters})

    return [
        Route("/v1/notify/rules", list_rules, methods=["GET"]),
        Route("/v1/notify/rules", add_rule, methods=["POST"]),
        Route("/v1/notify/rules/{rule_id}", delete_rule, methods=["DELETE"]),
        Route("/v1/notify/dead-letters", list_dead_letters, methods=["GET"]),
    ]


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(encoder.encode(body), status_code=status, media_type="application/json")
