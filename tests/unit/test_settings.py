"""Settings: missing ones named, malformed ones refused, secrets read from files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from allegro_sync.config.settings import SECRET_FIELDS, Settings, SettingsError, load_settings

REQUIRED = {
    "ALLEGRO_SYNC_CLIENT_ID": "client",
    "ALLEGRO_SYNC_CLIENT_SECRET": "client-secret",
    "ALLEGRO_SYNC_SECRET_KEY": "k" * 32,
    "ALLEGRO_SYNC_ADMIN_TOKEN": "a" * 32,
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key in list(__import__("os").environ):
        if key.startswith("ALLEGRO_SYNC_") or key == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(key)
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_defaults_follow_the_contract(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(Settings)
    assert settings.database_url == "postgresql://postgres@localhost:5432/allegro_sync"
    assert settings.amqp_url == "amqp://guest:guest@localhost:5672/"
    assert settings.api_url(sandbox=False) == "https://api.allegro.pl"
    assert settings.api_url(sandbox=True) == "https://api.allegro.pl.allegrosandbox.pl"
    assert settings.auth_url(sandbox=False) == "https://allegro.pl"
    assert settings.http_host == "127.0.0.1"
    assert settings.http_port == 8080


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_missing_setting_is_named(env: pytest.MonkeyPatch, name: str) -> None:
    env.delenv(name)
    with pytest.raises(SettingsError, match=f"^setting {name} is required but not set$"):
        load_settings(Settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALLEGRO_SYNC_HTTP_PORT", "eighty"),
        ("ALLEGRO_SYNC_HTTP_PORT", "70000"),
        ("ALLEGRO_SYNC_DATABASE_URL", "mysql://localhost/x"),
        ("ALLEGRO_SYNC_AMQP_URL", "http://localhost"),
        ("ALLEGRO_SYNC_AMQP_URL", "amqp://node-1/,http://node-2/"),
        ("ALLEGRO_SYNC_AMQP_URL", " , "),
        ("ALLEGRO_SYNC_SECRET_KEY", "short"),
        ("ALLEGRO_SYNC_ALLEGRO_API_URL", "not a url"),
    ],
)
def test_malformed_setting_is_named(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError, match=f"^setting {name} is invalid: "):
        load_settings(Settings)


def test_amqp_url_takes_the_nodes_of_a_cluster(env: pytest.MonkeyPatch) -> None:
    from allegro_sync.adapters.broker.connection import broker_urls

    env.setenv("ALLEGRO_SYNC_AMQP_URL", "amqp://u:p@node-1:5672/, amqps://u:p@node-2:5671/,")
    settings = load_settings(Settings)
    assert broker_urls(settings.amqp_url) == ["amqp://u:p@node-1:5672/", "amqps://u:p@node-2:5671/"]


def test_dotenv_file_is_read(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.delenv("ALLEGRO_SYNC_ADMIN_TOKEN")
    (tmp_path / ".env").write_text(
        "ALLEGRO_SYNC_ADMIN_TOKEN=from-dotenv-0123456789abcdef0123456789\n"
    )
    assert (
        load_settings(Settings).admin_token.get_secret_value()
        == "from-dotenv-0123456789abcdef0123456789"
    )


def test_secret_from_file_and_credentials_directory(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.delenv("ALLEGRO_SYNC_SECRET_KEY")
    env.delenv("ALLEGRO_SYNC_CLIENT_SECRET")
    key_file = tmp_path / "key"
    key_file.write_text("f" * 40 + "\n")
    env.setenv("ALLEGRO_SYNC_SECRET_KEY_FILE", str(key_file))
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "client_secret").write_text("from-systemd")
    env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    settings = load_settings(Settings)
    assert settings.secret_key.get_secret_value() == "f" * 40
    assert settings.client_secret.get_secret_value() == "from-systemd"


def test_secrets_do_not_show_in_repr(env: pytest.MonkeyPatch) -> None:
    text = repr(load_settings(Settings))
    for secret in ("client-secret", "k" * 32):
        assert secret not in text


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "allegro_sync.daemon.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_stops_with_one_line_and_exit_2(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env.update({k: v for k, v in REQUIRED.items() if k != "ALLEGRO_SYNC_CLIENT_ID"})
    result = _cli(["run"], env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "allegro-sync: setting ALLEGRO_SYNC_CLIENT_ID is required but not set"
    ]
    assert "Traceback" not in result.stderr + result.stdout

    env.update(REQUIRED | {"ALLEGRO_SYNC_HTTP_PORT": "x"})
    result = _cli(["run"], env, tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "ALLEGRO_SYNC_HTTP_PORT" in result.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    import os

    result = _cli(["--help"], dict(os.environ), tmp_path)
    assert result.returncode == 0
    for command in ("run", "migrate", "emulator"):
        assert command in result.stdout


def test_the_default_user_agent_has_allegros_form(env: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    settings = load_settings(Settings)
    version = metadata.version("allegro-sync")
    assert settings.user_agent == (
        f"allegro-sync/{version} (+https://github.com/allegro-sync/allegro-sync)"
    )


@pytest.mark.parametrize(
    "value",
    [
        "allegro-sync/0.1",  # no URL
        "allegro sync/1.0 (+https://shop.example)",  # a space in the name
        "allegro-sync (+https://shop.example)",  # no version
        "allegro-sync/1.0 (https://shop.example)",  # no plus
        "allegro-sync/1.0 (+shop.example)",  # not a URL
    ],
)
def test_a_user_agent_of_another_form_is_refused(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("ALLEGRO_SYNC_USER_AGENT", value)
    with pytest.raises(SettingsError, match=r"^setting ALLEGRO_SYNC_USER_AGENT is invalid: "):
        load_settings(Settings)


def test_a_registered_app_name_is_taken(env: pytest.MonkeyPatch) -> None:
    env.setenv(
        "ALLEGRO_SYNC_USER_AGENT", "Sklep-Kowalski_ERP/2.1.0 (+https://kowalski.example/kontakt)"
    )
    assert load_settings(Settings).user_agent.startswith("Sklep-Kowalski_ERP/2.1.0 ")


def test_cli_refuses_a_malformed_user_agent_with_one_line_and_exit_2(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env.update(REQUIRED | {"ALLEGRO_SYNC_USER_AGENT": "my shop"})
    result = _cli(["run"], env, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("allegro-sync: setting ALLEGRO_SYNC_USER_AGENT is invalid: ")
    assert "AppName/version (+url)" in lines[0]


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("ALLEGRO_SYNC_ADMIN_TOKEN", "", "must not be empty or only whitespace"),
        ("ALLEGRO_SYNC_ADMIN_TOKEN", "   ", "must not be empty or only whitespace"),
        ("ALLEGRO_SYNC_ADMIN_TOKEN", "a" * 31, "must be at least 32 characters"),
        ("ALLEGRO_SYNC_SECRET_KEY", " " * 40, "must not be empty or only whitespace"),
        ("ALLEGRO_SYNC_SECRET_KEY_PREVIOUS", "short", "must be at least 32 characters"),
    ],
)
def test_weak_secrets_are_refused(env: pytest.MonkeyPatch, name: str, value: str, why: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError, match=f"^setting {name} is invalid: .*{why}"):
        load_settings(Settings)


def test_an_empty_admin_token_file_is_refused(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.delenv("ALLEGRO_SYNC_ADMIN_TOKEN")
    empty = tmp_path / "admin_token"
    empty.write_text("\n")
    env.setenv("ALLEGRO_SYNC_ADMIN_TOKEN_FILE", str(empty))
    with pytest.raises(SettingsError, match=r"^setting ALLEGRO_SYNC_ADMIN_TOKEN is invalid: "):
        load_settings(Settings)


def test_an_empty_previous_key_means_none(env: pytest.MonkeyPatch) -> None:
    env.setenv("ALLEGRO_SYNC_SECRET_KEY_PREVIOUS", "")
    settings = load_settings(Settings)
    assert settings.secret_key_previous is None
    assert settings.secret_keys() == ["k" * 32]


@pytest.mark.parametrize("name", ["smtp_url", "sandbox_client_secret", "secret_key_previous"])
def test_each_secret_can_come_from_a_systemd_credential(
    env: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """What ``LoadCredential=`` in systemd/allegro-sync.service hands over is read."""
    values = {
        "smtp_url": "smtp://mailer:hunter2@mail.example:587",
        "sandbox_client_secret": "sandbox-secret-from-credential",
        "secret_key_previous": "p" * 40,
    }
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / name).write_text(values[name] + "\n")
    env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    value = getattr(load_settings(Settings), name)
    assert value.get_secret_value() == values[name]


def test_systemd_unit_loads_every_secret_as_a_credential() -> None:
    """Every secret setting the daemon uses is a ``LoadCredential=``, none an ``Environment=``."""
    unit = (Path(__file__).parents[2] / "systemd" / "allegro-sync.service").read_text()
    for name in SECRET_FIELDS:
        assert f"LoadCredential={name}:/etc/allegro-sync/credentials/{name}" in unit, name
    assert "Environment=ALLEGRO_SYNC_SMTP_URL" not in unit


def test_cli_refuses_an_empty_admin_token_with_one_line_and_exit_2(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env.update(REQUIRED | {"ALLEGRO_SYNC_ADMIN_TOKEN": ""})
    result = _cli(["run"], env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "allegro-sync: setting ALLEGRO_SYNC_ADMIN_TOKEN is invalid: "
        "Value error, must not be empty or only whitespace"
    ]


def test_an_empty_credential_leaves_an_optional_secret_unset(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    for name in ("smtp_url", "sandbox_client_secret", "secret_key_previous"):
        (creds / name).write_text("")
    env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    settings = load_settings(Settings)
    assert settings.smtp_url.get_secret_value() == "smtp://127.0.0.1:25"
    assert settings.sandbox_client_secret is None
    assert settings.secret_key_previous is None
