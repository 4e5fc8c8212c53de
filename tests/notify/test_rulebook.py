from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.notify.rulebook import (
    RULES_FILE,
    SOURCE_API,
    SOURCE_CONFIG,
    RuleBook,
    RuleConflictError,
)
from tests.notify.conftest import make_rule

URL = "http://127.0.0.1:9/hook"


def test_rulebook_api_rule_survives_restart(tmp_path: Path) -> None:
    book = RuleBook([], tmp_path, smtp_configured=False)
    book.add(make_rule(id="night", webhook_url=URL, webhook_secret="s"))

    reopened = RuleBook([], tmp_path, smtp_configured=False)
    reopened.load()
    (rule,) = reopened.rules()
    assert rule.id == "night"
    assert rule.rule.webhook_secret == "s"
    assert reopened.source("night") == SOURCE_API


def test_rulebook_file_private(tmp_path: Path) -> None:
    book = RuleBook([], tmp_path, smtp_configured=False)
    book.add(make_rule(webhook_url=URL, webhook_secret="s"))
    mode = stat.S_IMODE((tmp_path / RULES_FILE).stat().st_mode)
    assert mode == 0o600


def test_rulebook_delete_persists(tmp_path: Path) -> None:
    book = RuleBook([], tmp_path, smtp_configured=False)
    book.add(make_rule(id="a", webhook_url=URL))
    book.add(make_rule(id="b", webhook_url=URL))
    book.delete("a")
    reopened = RuleBook([], tmp_path, smtp_configured=False)
    reopened.load()
    assert [rule.id for rule in reopened.rules()] == ["b"]


def test_rulebook_config_rule_not_deleted(tmp_path: Path) -> None:
    book = RuleBook([make_rule(id="cfg", webhook_url=URL)], tmp_path, smtp_configured=False)
    assert book.source("cfg") == SOURCE_CONFIG
    with pytest.raises(RuleConflictError):
        book.delete("cfg")
    assert [rule.id for rule in book.rules()] == ["cfg"]


def test_rulebook_duplicate_id_rejected(tmp_path: Path) -> None:
    book = RuleBook([make_rule(id="cfg", webhook_url=URL)], tmp_path, smtp_configured=False)
    with pytest.raises(RuleConflictError):
        book.add(make_rule(id="cfg", webhook_url=URL))


def test_rulebook_unknown_id_delete(tmp_path: Path) -> None:
    book = RuleBook([], tmp_path, smtp_configured=False)
    with pytest.raises(KeyError):
        book.delete("nope")


def test_rulebook_email_needs_smtp_host(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="smtp_host"):
        RuleBook([make_rule(email_to=["ops@example.org"])], tmp_path, smtp_configured=False)


def test_rulebook_corrupt_file_rejected(tmp_path: Path) -> None:
    (tmp_path / RULES_FILE).write_text("{not json")
    book = RuleBook([], tmp_path, smtp_configured=False)
    with pytest.raises(ConfigError, match=RULES_FILE):
        book.load()
