"""The command line: python -m graphcomms demo | emulator."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from graphcomms import __main__ as cli
from graphcomms.__main__ import main

TOKEN = "cli-s3cret-token"


def test_demo_exits_zero_and_says_every_step_behaved(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--prompt-seconds", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "OK: every step behaved" in out
    assert "recordResponse" in out
    # The caller is held past the emulator's keepAlive window; keepAlives keep the call.
    assert "still established after the hold" in out
    sent = re.search(r"keepAlives (\d+) sent, 0 failed", out)
    assert sent is not None
    assert int(sent.group(1)) >= 3


def test_a_command_is_required() -> None:
    with pytest.raises(SystemExit):
        main([])


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def _options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    return (a for a in parser._actions if not isinstance(a, argparse._HelpAction))


@pytest.mark.parametrize("command", ["demo", "emulator"])
def test_every_option_has_plain_help(command: str) -> None:
    parser = _subcommands(cli.build_parser())[command]
    options = list(_options(parser))
    assert options
    for action in options:
        assert action.help, f"{command} {action.option_strings} has no help"
        assert "`" not in action.help  # argparse prints it as is: no reST
    text = parser.format_help()
    assert TOKEN not in text


def test_the_package_command_is_demo_and_emulator_only() -> None:
    # The QA harnesses (soak, flood) run from the repository: python -m qa.
    assert set(_subcommands(cli.build_parser())) == {"demo", "emulator"}
    with pytest.raises(SystemExit):
        main(["soak"])


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Stands in for run_emulator: records what the command line asked for."""
    seen: dict[str, Any] = {}

    async def fake_run_emulator(port: int, host: str, seed: int, **options: Any) -> None:
        seen.update(port=port, host=host, seed=seed, **options)

    from graphcomms.testing import _emulator

    monkeypatch.setattr(_emulator, "run_emulator", fake_run_emulator)
    monkeypatch.delenv("GRAPHCOMMS_EMULATOR_ACCESS_TOKEN", raising=False)
    return seen


def test_emulator_defaults_take_any_token(served: dict[str, Any]) -> None:
    assert main(["emulator"]) == 0
    assert served == {
        "port": 8765,
        "host": "127.0.0.1",
        "seed": 0,
        "access_token": None,
        "readable_operations": "documented",
        "bot_webhook_url": None,
        "prompt_seconds": 0.05,
        "keep_alive_window": 2700.0,
    }


def test_emulator_bot_webhook_prompt_time_and_keep_alive_window(served: dict[str, Any]) -> None:
    url = "http://127.0.0.1:9000/callback"
    argv = ["emulator", "--bot-webhook-url", url, "--prompt-seconds", "0.5"]
    assert main([*argv, "--keep-alive-window", "30"]) == 0
    assert (served["bot_webhook_url"], served["prompt_seconds"]) == (url, 0.5)
    assert served["keep_alive_window"] == 30.0
    assert main(["emulator", "--keep-alive-window", "0"]) == 0
    assert served["keep_alive_window"] is None  # 0: calls never end for want of a keepAlive
    for bad in ("-1", "nan", "inf", "soon"):
        with pytest.raises(SystemExit):
            main(["emulator", "--keep-alive-window", bad])


def test_emulator_reads_back_every_operation_on_request(served: dict[str, Any]) -> None:
    assert main(["emulator", "--readable-operations", "all"]) == 0
    assert served["readable_operations"] == "all"
    with pytest.raises(SystemExit):
        main(["emulator", "--readable-operations", "some"])


def test_emulator_access_token_from_the_flag(served: dict[str, Any]) -> None:
    assert main(["emulator", "--port", "0", "--seed", "4", "--access-token", TOKEN]) == 0
    assert (served["port"], served["seed"], served["access_token"]) == (0, 4, TOKEN)


def test_emulator_access_token_from_the_environment(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The environment keeps the token out of the process list (argv is public).
    monkeypatch.setenv("GRAPHCOMMS_EMULATOR_ACCESS_TOKEN", TOKEN)
    assert main(["emulator"]) == 0
    assert served["access_token"] == TOKEN
    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    assert TOKEN not in capsys.readouterr().out


async def emulator_command(*options: str, **spawn: Any) -> asyncio.subprocess.Process:
    """``python -m graphcomms emulator --port 0 [options]``, its output piped."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "graphcomms", "emulator", "--port", "0", *options),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        **spawn,
    )


async def test_the_emulator_command_requires_its_access_token() -> None:
    process = await emulator_command("--access-token", TOKEN)
    assert process.stdout is not None
    printed: list[str] = []
    try:
        while not any("Graph v1.0:" in line for line in printed):
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, f"the emulator exited early: {printed}"
            printed.append(line.decode())
        graph_url = next(line for line in printed if "Graph v1.0:" in line).split()[-1]
        url = f"{graph_url}communications/calls/nope"
        async with aiohttp.ClientSession() as http:
            for authorization in ("Bearer wrong-token", None):
                headers = {} if authorization is None else {"Authorization": authorization}
                async with http.get(url, headers=headers) as response:
                    assert response.status == 401
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
                    body = await response.json()
                    assert body["error"]["code"] == "InvalidAuthenticationToken"
            async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
                assert response.status == 404  # past authentication: no such call
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert TOKEN not in "".join(printed) + rest.decode()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("stop", "sigint_ignored"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigterm", "sigint-started-ignored"],
)
async def test_the_emulator_command_stops_cleanly_on_a_signal(
    stop: signal.Signals, sigint_ignored: bool
) -> None:
    """A service manager stops it with SIGTERM; a shell script that started it in the
    background (which starts it with SIGINT ignored) with SIGINT."""
    process = await emulator_command(
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )
    assert process.stdout is not None
    try:
        while b"Graph v1.0:" not in await asyncio.wait_for(process.stdout.readline(), 30):
            pass
    finally:
        process.send_signal(stop)
        _, errors = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, errors.decode()
    assert b"Traceback" not in errors


def test_the_top_level_help_explains_every_command_in_plain_text() -> None:
    parser = cli.build_parser()
    for action in _options(parser):
        assert action.help, f"{action.dest} has no help"
    assert parser.description
    for name, command in _subcommands(parser).items():
        assert command.description, f"{name} has no description"
    texts = [parser.format_help()] + [c.format_help() for c in _subcommands(parser).values()]
    for text in texts:
        assert "`" not in text  # argparse prints it as is: no reST


def test_without_pyjwt_the_command_line_names_the_extra_once() -> None:
    # A process of its own: PyJWT is hidden from imports there, not in this one.
    script = (
        "import sys; sys.modules['jwt'] = None\n"
        "from graphcomms.__main__ import main\n"
        "sys.exit(main(['emulator', '--port', '0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "PyJWT" in done.stderr
    assert done.stderr.count('pip install "graphcomms[testing]"') == 1
