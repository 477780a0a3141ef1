"""The systemd unit is valid and the example env file documents every setting."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from allegro_sync.config.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (ROOT / "systemd" / "allegro-sync.service").read_text()
    assert "EnvironmentFile=" in unit and "Restart=on-failure" in unit
    hardening = ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes")
    for line in hardening:
        assert line in unit
    # verify against this checkout's console script instead of the installed path
    executable = Path(sys.prefix) / "bin" / "allegro-sync"
    local = tmp_path / "allegro-sync.service"
    local.write_text(unit.replace("/opt/allegro-sync/venv/bin/allegro-sync", str(executable)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "allegro-sync.service" not in result.stderr, result.stderr


def test_example_env_documents_every_setting() -> None:
    example = (ROOT / "allegro_sync" / "config" / "example.env").read_text()
    for name in Settings.model_fields:
        assert f"{ENV_PREFIX}{name.upper()}=" in example, name


# The first releases without a known advisory (pyproject.toml says which advisories).
SECURITY_FLOORS = {"aiohttp": "3.14.3", "cryptography": "50.0.0"}


def test_dependency_floors_admit_no_release_with_a_known_advisory() -> None:
    import re
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = {r.name: r for r in map(Requirement, project["dependencies"])}
    lock = (ROOT / "requirements-dev.lock").read_text()
    for name, floor in SECURITY_FLOORS.items():
        specifier = requirements[name].specifier
        # the floor itself is admitted, nothing just below it is
        assert specifier.contains(floor), (name, str(specifier))
        major, minor, patch = Version(floor).release
        if patch:
            just_below = f"{major}.{minor}.{patch - 1}"
        elif minor:
            just_below = f"{major}.{minor - 1}.99"
        else:
            just_below = f"{major - 1}.99.99"
        assert not specifier.contains(just_below), (name, str(specifier))
        pinned = re.search(rf"^{name}==(\S+)", lock, re.M)
        assert pinned is not None and specifier.contains(pinned.group(1)), name
