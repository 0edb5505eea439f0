"""settings.load(): the STAGE default is for chalice local and tests only (issue 12, finding 9)."""

from __future__ import annotations

import pytest

from chalicelib.settings import LOCAL_TURNSTILE_SECRET, SettingsError, load

FUNCTION = "juice-orders-prod"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STAGE", "AWS_LAMBDA_FUNCTION_NAME", "TURNSTILE_SECRET", "SES_FEEDBACK_TOPIC_ARN"):
        monkeypatch.delenv(name, raising=False)


def test_lambda_without_stage_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)

    with pytest.raises(SettingsError) as e:
        load()

    assert "STAGE is not set" in str(e.value) and FUNCTION in str(e.value)


def test_lambda_with_an_empty_stage_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
    monkeypatch.setenv("STAGE", "")

    with pytest.raises(SettingsError):
        load()


def test_lambda_with_the_local_stage_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
    monkeypatch.setenv("STAGE", "local")

    with pytest.raises(SettingsError) as e:
        load()

    assert "test secrets" in str(e.value)


def test_lambda_with_a_stage_has_no_test_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
    monkeypatch.setenv("STAGE", "prod")

    s = load()

    assert s.stage == "prod" and not s.is_local
    assert s.turnstile_secret == ""  # from TURNSTILE_SECRET_PARAM (SSM), never the test key
    assert s.ses_feedback_topic_arn == ""  # fail closed: no feedback accepted until configured
    assert s.business_hours != "always"


def test_outside_lambda_an_unset_stage_is_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """`chalice local` and the tests: no AWS_LAMBDA_FUNCTION_NAME, so "local" is the default."""
    s = load()

    assert s.stage == "local" and s.is_local
    assert s.turnstile_secret == LOCAL_TURNSTILE_SECRET


@pytest.mark.parametrize("stage", ["dev", "prod", "staging"])
def test_only_the_local_stage_defaults_to_the_test_secret(
    stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGE", stage)

    assert load().turnstile_secret == ""


def test_chalice_test_client_still_runs_the_local_stage() -> None:
    """chalice.test.Client sets the stage's environment (STAGE=local from .chalice/config.json)
    and no Lambda function name: the app answers."""
    from chalice.test import Client

    from app import app
    from tests.conftest import ROOT

    with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
        response = client.http.get("/catalog")

    assert response.status_code == 200
