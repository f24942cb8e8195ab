"""The one configuration: nested sections under their historic variable names, typos refused,
every setting read by the code it names, and the README table generated from the model."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.models.enums import Priority
from core.settings import Settings, UnknownSettingError, setting_fields, with_settings_table
from detectors.pipeline import SHIPPED_RULES, default_rules_path
from remediation.config import DEFAULT_POLICY_FILE, policy_file
from timeline.config import TimelineConfig

ROOT = Path(__file__).resolve().parents[2]


def test_a_mistyped_variable_is_an_error_naming_it_and_the_closest_valid_name(monkeypatch) -> None:
    monkeypatch.setenv("TENANTGUARD_COLLECTOR_THREDS", "3")
    with pytest.raises(UnknownSettingError) as raised:
        Settings()
    assert "TENANTGUARD_COLLECTOR_THREDS" in str(raised.value)
    assert "did you mean TENANTGUARD_COLLECTOR_THREADS?" in str(raised.value)


def test_a_top_level_typo_is_refused_too_and_non_settings_prefixes_are_allowed(monkeypatch) -> None:
    monkeypatch.setenv("TENANTGUARD_DATABSE_URL", "sqlite://")
    with pytest.raises(UnknownSettingError, match="did you mean TENANTGUARD_DATABASE_URL"):
        Settings()
    monkeypatch.delenv("TENANTGUARD_DATABSE_URL")
    monkeypatch.setenv("TENANTGUARD_SECRET_SLACK_TOKEN", "xoxb-not-a-setting")
    monkeypatch.setenv("TENANTGUARD_SIM_M365_CLIENT_SECRET", "s")
    monkeypatch.setenv("TENANTGUARD_DEBUG", "1")
    Settings()


def test_existing_variable_names_reach_their_sections(monkeypatch, tmp_path) -> None:
    policy = tmp_path / "policy.yaml"
    monkeypatch.setenv("TENANTGUARD_API_TOKEN_PEPPER", "p" * 40)
    monkeypatch.setenv("TENANTGUARD_API_RATE_LIMIT_BURST", "7")
    monkeypatch.setenv("TENANTGUARD_REMEDIATION_POLICY_FILE", str(policy))
    monkeypatch.setenv("TENANTGUARD_COLLECTOR_THREADS", "3")
    monkeypatch.setenv("TENANTGUARD_ANOMALY_ALLOWED_NETWORKS", '["203.0.113.0/24"]')
    monkeypatch.setenv("TENANTGUARD_RULES_DIR", str(tmp_path))
    monkeypatch.setenv("TENANTGUARD_PIPELINE_SWEEP_SECONDS", "5")
    settings = Settings()
    assert settings.api.token_pepper is not None and settings.api.token_pepper.get_secret_value() == "p" * 40
    assert settings.api.rate_limit_burst == 7
    assert policy_file(settings) == policy
    assert settings.collector.threads == 3
    assert settings.anomaly.is_allowed("203.0.113.9") and not settings.anomaly.is_allowed("198.51.100.1")
    assert default_rules_path(settings) == tmp_path
    assert settings.pipeline_sweep_seconds == 5


def test_unset_paths_mean_the_shipped_files(monkeypatch) -> None:
    settings = Settings()
    assert policy_file(settings) == DEFAULT_POLICY_FILE
    assert default_rules_path(settings) == SHIPPED_RULES


def test_the_timeline_windows_slas_and_public_url_are_settings(monkeypatch) -> None:
    monkeypatch.setenv("TENANTGUARD_TIMELINE_GROUP_WINDOW", "6h")
    monkeypatch.setenv("TENANTGUARD_TIMELINE_CONVERSATION_BEFORE", "1d")
    monkeypatch.setenv("TENANTGUARD_TIMELINE_CONVERSATION_AFTER", "90m")
    monkeypatch.setenv("TENANTGUARD_TIMELINE_SLA_P1_ACKNOWLEDGE", "5m")
    monkeypatch.setenv("TENANTGUARD_TIMELINE_SLA_P4_RESOLVE", "2w")
    monkeypatch.setenv("TENANTGUARD_TIMELINE_NOTIFY_CHANNEL", "#soc")
    monkeypatch.setenv("TENANTGUARD_PUBLIC_URL", "https://tg.example.com")
    config = TimelineConfig.from_settings(Settings())
    assert config.group_window == timedelta(hours=6)
    assert config.conversation_before == timedelta(days=1)
    assert config.conversation_after == timedelta(minutes=90)
    assert config.sla[Priority.P1].acknowledge == timedelta(minutes=5)
    assert config.sla[Priority.P1].resolve == timedelta(hours=4)  # unchanged default
    assert config.sla[Priority.P4].resolve == timedelta(weeks=2)
    assert config.notify_channel == "#soc"
    assert config.public_url == "https://tg.example.com"


def test_default_settings_give_the_default_timeline() -> None:
    assert TimelineConfig.from_settings(Settings()) == TimelineConfig()


def test_a_bad_value_names_its_variable(monkeypatch) -> None:
    monkeypatch.setenv("TENANTGUARD_TIMELINE_GROUP_WINDOW", "two hours")
    with pytest.raises(ConfigurationError, match="TENANTGUARD_TIMELINE_GROUP_WINDOW: .*not a duration"):
        Settings()
    monkeypatch.delenv("TENANTGUARD_TIMELINE_GROUP_WINDOW")
    monkeypatch.setenv("TENANTGUARD_LOG_LEVEL", "loud")
    with pytest.raises(ConfigurationError, match="TENANTGUARD_LOG_LEVEL: .*not a log level"):
        Settings()
    monkeypatch.setenv("TENANTGUARD_LOG_LEVEL", "info")
    monkeypatch.setenv("TENANTGUARD_ANOMALY_ALLOWED_NETWORKS", '["not-a-net"]')
    with pytest.raises(ConfigurationError, match="TENANTGUARD_ANOMALY_ALLOWED_NETWORKS: .*not a network"):
        Settings()


def test_retention_shorter_than_the_backfill_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="TENANTGUARD_EVENT_RETENTION_DAYS=3 is shorter"):
        Settings(event_retention_days=3)
    assert Settings(event_retention_days=30).event_retention_days == 30


def test_the_log_level_configures_logging(monkeypatch) -> None:
    monkeypatch.setenv("TENANTGUARD_LOG_LEVEL", "debug")
    root = logging.getLogger()
    before = root.level
    try:
        Settings().configure_logging()
        assert root.level == logging.DEBUG
        assert logging.getLogger("tenantguard.serve").getEffectiveLevel() == logging.DEBUG
        Settings().configure_logging(unless_set="WARNING")  # set explicitly: the CLI obeys it too
        assert root.level == logging.DEBUG
        monkeypatch.delenv("TENANTGUARD_LOG_LEVEL")
        Settings().configure_logging(unless_set="WARNING")  # the CLI's quiet default
        assert root.level == logging.WARNING
        Settings().configure_logging()  # serve and workers: INFO
        assert root.level == logging.INFO
    finally:
        root.setLevel(before)
        logging.getLogger("tenantguard").setLevel(logging.NOTSET)


def test_every_setting_has_a_description() -> None:
    undocumented = [
        name for name, model, field in setting_fields() if not model.model_fields[field].description
    ]
    assert undocumented == []


def test_the_readme_configuration_table_is_generated_from_the_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == with_settings_table(readme), "README.md is out of date: run `tenantguard config docs`"
    for name, _, _ in setting_fields():
        assert f"`{name}`" in readme
