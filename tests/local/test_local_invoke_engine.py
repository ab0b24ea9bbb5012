"""Where no Docker engine can run, `make local-invoke` says so and skips (status 0), or
fails (status 2) when asked to be strict; checked here without touching Docker."""

import io
from typing import Any

import pytest

from local import engine, invoke
from local.plan import Step


def _no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    monkeypatch.setattr(engine, "is_root", lambda: False)
    monkeypatch.setattr(engine, "daemon_answers", lambda: False)


def test_no_docker_and_no_way_to_install_it_is_a_clear_no_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_docker(monkeypatch)
    with pytest.raises(engine.NoEngine, match=r"docker\.io missing, and no root apt-get"):
        engine.ensure_engine(lambda line: None)


def test_a_daemon_that_is_not_running_needs_root_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(engine, "is_root", lambda: False)
    monkeypatch.setattr(engine, "daemon_answers", lambda: False)
    with pytest.raises(engine.NoEngine, match="starting dockerd needs root"):
        engine.ensure_engine(lambda line: None)


@pytest.mark.parametrize(("strict", "status"), [(False, 0), (True, 2)])
def test_without_an_engine_it_skips_unless_strict(
    monkeypatch: pytest.MonkeyPatch, strict: bool, status: int
) -> None:
    _no_docker(monkeypatch)
    out = io.StringIO()
    assert invoke.run(strict, False, "python3.12", out) == status
    said = out.getvalue()
    assert "no Docker engine can run here" in said
    assert ("FAILED (strict)" in said) == strict
    assert ("SKIPPED" in said) != strict


class _Account:
    """judge() asks the account only to rewrite fake IDs."""

    def rewrite(self, text: str) -> str:
        return text


def test_a_handler_error_fails_the_step_unless_it_is_the_one_expected() -> None:
    error = {"errorType": "HelperNotUsable", "errorMessage": "stopped"}
    account: Any = _Account()
    assert invoke.judge(Step("F", "s", "m", expect={"ready": True}), error, account) == [
        "HelperNotUsable: stopped"
    ]
    assert invoke.judge(Step("F", "s", "m", error="HelperNotUsable"), error, account) == []
    assert invoke.judge(Step("F", "s", "m", error="HelperNotUsable"), {"ready": True}, account)
