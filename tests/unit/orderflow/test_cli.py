from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orderflow.cli import _COMMANDS, cli

_VERSIONS = Path(__file__).parents[3] / "orderflow" / "migrations" / "versions"


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in _COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_the_console_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from orderflow.cli import main; main()", "topics", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "register" in done.stdout


def test_a_configuration_error_is_one_clear_line(clean_env: pytest.MonkeyPatch) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from orderflow.cli import main; main()", "topics"],
        capture_output=True,
        text=True,
        check=False,
        env={"ORDERFLOW_TOPIC_PARTITIONS": "zero", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "configuration error" in done.stderr and "ORDERFLOW_TOPIC_PARTITIONS" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrate_brings_an_empty_database_to_the_newest_revision(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("ORDERFLOW_DATABASE_URL", f"sqlite:///{tmp_path}/new.db")
    first = CliRunner().invoke(cli, ["migrate"])
    again = CliRunner().invoke(cli, ["migrate"])
    assert first.exit_code == 0, first.output
    newest = sorted(p.stem.split("_")[0] for p in _VERSIONS.glob("0*.py"))[-1]
    assert first.output.strip() == f"database schema at revision {newest}"
    assert again.output == first.output
