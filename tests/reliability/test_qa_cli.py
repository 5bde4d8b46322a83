"""The QA harnesses' command line: python -m qa soak | flood, from the repository."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from qa.__main__ import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_the_harnesses_are_not_in_the_installed_package() -> None:
    # The wheel is built from graphcomms/ alone; qa/ sits beside it.
    # (tomllib is 3.11+, the project 3.10+: the section is read as text.)
    pyproject = (ROOT / "pyproject.toml").read_text()
    wheel = pyproject.split("[tool.hatch.build.targets.wheel]\n", 1)[1].split("\n[", 1)[0]
    assert wheel.strip() == 'packages = ["graphcomms"]'
    package = ROOT / "graphcomms"
    assert not [p for p in package.rglob("*.py") if "soak" in p.name or "flood" in p.name]
    for gone in ("graphcomms.testing._soak", "graphcomms.testing._flood"):
        assert importlib.util.find_spec(gone) is None


def test_every_option_has_plain_help() -> None:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {"soak", "flood"}
    for name, command in commands.choices.items():
        options = [a for a in command._actions if not isinstance(a, argparse._HelpAction)]
        assert options
        for action in options:
            assert action.help, f"{name} {action.option_strings} has no help"
            assert "`" not in action.help


def test_a_small_soak_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["soak", "--operations", "150", "--calls", "6", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "150 operations" in out
    assert "OK: every check passed" in out


def test_python_dash_m_qa_runs_from_the_repository() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qa", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "soak" in done.stdout
    assert "flood" in done.stdout
