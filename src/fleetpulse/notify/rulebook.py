"""The rule book: rules from the config file plus rules added through the API.

API rules are kept in ``<data_dir>/notify-rules.json``, written whole to a temporary
file and renamed over the old one, so a crash leaves either the old or the new list.
A JSON file rather than the store because rules are a few small config-like entries
read once at start, and an operator can read, back up or edit the file. Config rules
cannot be deleted through the API: they would come back at the next start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import msgspec

from fleetpulse.config import NotifyRule
from fleetpulse.errors import ConfigError
from fleetpulse.notify.rules import CompiledRule, compile_rule

log = logging.getLogger(__name__)

RULES_FILE = "notify-rules.json"

SOURCE_CONFIG = "config"
SOURCE_API = "api"


class RuleConflictError(ConfigError):
    """A rule id that is taken, or a config rule that the API may not delete."""


class RuleBook:
    """Compiled rules by id, with where each came from (``config`` or ``api``)."""

    def __init__(
        self, config_rules: list[NotifyRule], data_dir: str | Path, smtp_configured: bool
    ) -> None:
        self._path = Path(data_dir) / RULES_FILE
        self._smtp_configured = smtp_configured
        self._rules: dict[str, CompiledRule] = {}
        self._sources: dict[str, str] = {}
        for rule in config_rules:
            self._insert(self._compile(rule), SOURCE_CONFIG)

    def __len__(self) -> int:
        return len(self._rules)

    @property
    def path(self) -> Path:
        """The JSON file of the API rules."""
        return self._path

    def load(self) -> None:
        """Read the API rules saved by an earlier run. Raises ConfigError if the file is bad."""
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return
        try:
            rules = msgspec.json.decode(data, type=list[NotifyRule])
        except msgspec.DecodeError as exc:
            raise ConfigError(f"{self._path} is not a list of notify rules: {exc}") from exc
        for rule in rules:
            self._insert(self._compile(rule), SOURCE_API)
        log.info("notify rules loaded: path=%s api_rules=%s", self._path, len(rules))

    def rules(self) -> list[CompiledRule]:
        """Return every rule, config rules first."""
        return list(self._rules.values())

    def source(self, rule_id: str) -> str:
        """Return where a rule came from: ``config`` or ``api``. Raises KeyError if unknown."""
        return self._sources[rule_id]

    def add(self, rule: NotifyRule) -> CompiledRule:
        """Validate, add and save an API rule. Raises ConfigError or RuleConflictError."""
        compiled = self._compile(rule)
        self._insert(compiled, SOURCE_API)
        try:
            self._save()
        except OSError:
            self._remove(rule.id)
            raise
        return compiled

    def delete(self, rule_id: str) -> None:
        """Delete and save an API rule. Raises KeyError or RuleConflictError."""
        source = self._sources[rule_id]
        if source == SOURCE_CONFIG:
            raise RuleConflictError(
                f"notify rule {rule_id!r} comes from the config file; remove it there and restart"
            )
        compiled = self._rules[rule_id]
        self._remove(rule_id)
        try:
            self._save()
        except OSError:
            self._insert(compiled, source)
            raise

    def _compile(self, rule: NotifyRule) -> CompiledRule:
        compiled = compile_rule(rule)
        if rule.email_to and not self._smtp_configured:
            raise ConfigError(
                f"notify rule {rule.id!r} has email_to, but [notify] smtp_host is not set"
            )
        return compiled

    def _insert(self, compiled: CompiledRule, source: str) -> None:
        if compiled.id in self._rules:
            raise RuleConflictError(
                f"notify rule id {compiled.id!r} is already used by a {self._sources[compiled.id]} "
                "rule; choose another id"
            )
        self._rules[compiled.id] = compiled
        self._sources[compiled.id] = source

    def _remove(self, rule_id: str) -> None:
        del self._rules[rule_id]
        del self._sources[rule_id]

    def _save(self) -> None:
        api_rules = [c.rule for c in self._rules.values() if self._sources[c.id] == SOURCE_API]
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        # 0600, because the file contains the webhook secrets.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(msgspec.json.format(msgspec.json.encode(api_rules)))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._path)
