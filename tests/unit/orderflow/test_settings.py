from __future__ import annotations

import pytest

from orderflow.settings import ConfigError, Settings, load_settings


def test_defaults_point_at_the_local_stack(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.topic_orders == "shopee.orders"
    assert settings.database_url.startswith("sqlite")
    assert settings.webhook_port == 8080


def test_environment_variables_use_the_prefix(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    clean_env.setenv("ORDERFLOW_SHOPEE_PARTNER_ID", "2001887")
    clean_env.setenv("ORDERFLOW_SHOPEE_PARTNER_KEY", "s3cret-key")
    settings = load_settings()
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.require_shopee()[0] == 2001887


def test_secrets_never_show_in_repr(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ORDERFLOW_SHOPEE_PARTNER_KEY", "s3cret-key")
    settings = load_settings()
    assert "s3cret-key" not in repr(settings) and "s3cret-key" not in str(settings)


def test_the_push_key_defaults_to_the_partner_key(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ORDERFLOW_SHOPEE_PARTNER_KEY", "partner")
    assert load_settings().push_key.get_secret_value() == "partner"
    clean_env.setenv("ORDERFLOW_SHOPEE_PUSH_KEY", "push")
    assert load_settings().push_key.get_secret_value() == "push"


def test_a_bad_value_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ORDERFLOW_WEBHOOK_PORT", "eighty")
    with pytest.raises(ConfigError, match="ORDERFLOW_WEBHOOK_PORT"):
        load_settings()


def test_the_base_url_must_be_scheme_and_host(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ORDERFLOW_SHOPEE_BASE_URL", "https://partner.shopeemobile.com/api/v2")
    with pytest.raises(ConfigError, match=r"ORDERFLOW_SHOPEE_BASE_URL.*scheme and host only"):
        load_settings()
    clean_env.setenv("ORDERFLOW_SHOPEE_BASE_URL", "https://partner.shopeemobile.com/")
    assert load_settings().shopee_base_url == "https://partner.shopeemobile.com"


def test_missing_shopee_credentials_say_what_to_set() -> None:
    settings = Settings(shopee_partner_id=None, shopee_partner_key=None)
    with pytest.raises(ConfigError, match="ORDERFLOW_SHOPEE_PARTNER_ID"):
        settings.require_shopee()
    with pytest.raises(ConfigError, match="ORDERFLOW_SHOPEE_PUSH_KEY"):
        _ = settings.push_key
    with pytest.raises(ConfigError, match="ORDERFLOW_WEBHOOK_PUBLIC_URL"):
        settings.require_webhook_public_url()


def test_sasl_without_credentials_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ORDERFLOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match="ORDERFLOW_KAFKA_SASL_USERNAME"):
        load_settings()


def test_auto_cancel_statuses_are_normalised_and_limited_to_orders_not_yet_shipped(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("ORDERFLOW_AUTO_CANCEL_STATUSES", " ready_to_ship, PROCESSED ,")
    assert load_settings().auto_cancel_statuses == "READY_TO_SHIP,PROCESSED"
    clean_env.setenv("ORDERFLOW_AUTO_CANCEL_STATUSES", "READY_TO_SHIP,SHIPPED")
    with pytest.raises(ConfigError, match=r"ORDERFLOW_AUTO_CANCEL_STATUSES.*SHIPPED: auto-cancel"):
        load_settings()
