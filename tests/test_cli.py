"""The command line: python -m graphcomms demo | emulator | soak | flood."""

from __future__ import annotations

import pytest

from graphcomms.__main__ import main


def test_demo_exits_zero_and_says_every_step_behaved(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--prompt-seconds", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "OK: every step behaved" in out
    assert "recordResponse" in out


def test_small_soak_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["soak", "--operations", "150", "--calls", "6", "--seed", "3"]) == 0
    assert "150" in capsys.readouterr().out


def test_a_command_is_required() -> None:
    with pytest.raises(SystemExit):
        main([])
