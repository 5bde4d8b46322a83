"""Every ```python block in README.md and docs/*.md runs, and type-checks.

A block is run as it is written unless the line before its fence says otherwise, in an
HTML comment (invisible on GitHub and in the docs site):

- no comment: a complete script, run in a fresh namespace as ``__main__``;
- ``<!-- docs-test: setup=NAME -->``: the body of an ``async def`` (top-level ``await``
  allowed) run with the names of ``tests/docs_setups.py``'s setup NAME in scope,
  against the emulator;
- ``<!-- docs-test: pytest -->``: a user's test module, run by pytest (pytester) with
  the graphcomms plugin;
- ``<!-- docs-test: serve=NAME -->``: a script that ends in ``web.run_app(app)``;
  ``run_app`` is replaced by the check NAME below, which starts the app on loopback,
  sends it notifications and stops it;
- ``fragment`` (alone or with ``setup=``): not run, only compiled and type-checked; for
  what cannot run here (a real tenant, a deployment's settings).
- ``requires=MODULE``: skipped when MODULE is not installed (the floor job has no
  ``azure`` extra).

Every block, run or not, is also checked by ``mypy --strict`` with its setup's
declarations in front (``test_blocks_type_check``).

pytest-examples was considered: it runs each block as a module (no top-level ``await``,
no per-block async setup) and formats them with black, which this project does not use.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from docs_setups import SETUPS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->\s*\Z")
_OPTIONS = {"setup", "pytest", "serve", "fragment", "requires"}


@attrs.frozen
class Block:
    path: Path
    line: int  # of the first line of code, 1-based
    source: str
    options: dict[str, str]

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _blocks() -> Iterator[Block]:
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            options: dict[str, str] = {}
            directive = _DIRECTIVE.search(before)
            if directive:
                for word in directive.group(1).split():
                    key, _, value = word.partition("=")
                    options[key] = value
                unknown = set(options) - _OPTIONS
                assert not unknown, f"{path.name}: unknown docs-test options {unknown}"
            line = text.count("\n", 0, match.start(1)) + 1
            yield Block(path, line, match.group(1), options)


BLOCKS = list(_blocks())


def _missing(block: Block) -> str | None:
    """The module the block requires, when it is not installed."""
    module = block.options.get("requires")
    if not module:
        return None
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # its parent package (azure) is not installed either
        found = None
    return module if found is None else None


def _skip_unless_installed(block: Block) -> None:
    if module := _missing(block):
        pytest.skip(f"{block.name} needs {module}")


def _compile(block: Block, *, top_level_await: bool) -> Any:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if top_level_await else 0
    # Padded so that tracebacks and syntax errors name the document's own line.
    padded = "\n" * (block.line - 1) + block.source
    return compile(padded, str(block.path.relative_to(ROOT)), "exec", flags=flags)


def test_the_collector_finds_every_block() -> None:
    """A fence the regex misses would go untested: count them another way."""
    for path in DOCUMENTS:
        fences = sum(
            1 for line in path.read_text(encoding="utf-8").splitlines() if line == "```python"
        )
        assert sum(1 for b in BLOCKS if b.path == path) == fences, path.name
    assert any(b.path.name == "README.md" for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
async def test_block_runs(block: Block, pytester: pytest.Pytester, monkeypatch: Any) -> None:
    _skip_unless_installed(block)
    options = block.options
    if "fragment" in options:
        _compile(block, top_level_await=True)
        return
    if "pytest" in options:
        pytester.makepyfile(test_from_docs=block.source)
        result = await asyncio.to_thread(
            pytester.runpytest_subprocess,
            "-p", "no:cacheprovider", "-W", "error",
            "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
        )  # fmt: skip
        result.assert_outcomes(passed=1)
        return
    if "setup" in options:
        code = _compile(block, top_level_await=True)
        async with SETUPS[options["setup"]].enter() as namespace:
            result = eval(code, namespace)  # a coroutine when the block awaits
            if asyncio.iscoroutine(result):
                await asyncio.wait_for(result, 60)
        return
    # A test module run as a script would define its tests and pass without running one.
    assert not re.search(r"^(async )?def test_", block.source, re.MULTILINE), (
        f"{block.name} defines tests: mark it <!-- docs-test: pytest -->"
    )
    # A script: it calls asyncio.run itself, so it runs in a thread with no loop.
    code = _compile(block, top_level_await=False)
    if "serve" in options:
        monkeypatch.setattr("aiohttp.web.run_app", _SERVE_CHECKS[options["serve"]](monkeypatch))
    await asyncio.to_thread(exec, code, {"__name__": "__main__"})


# -- serve checks: what replaces web.run_app for a block that serves until stopped ------


def _webhook_check(monkeypatch: Any) -> Callable[..., None]:
    """The README's deployment block: its app must start (the client and the routes
    made in cleanup_ctx), accept a notification signed as the platform signs them (here
    by the emulator, whose keys the validator is pointed at), refuse one without a token
    before reading it, and close the client when it stops."""
    import aiohttp
    from aiohttp import web

    from graphcomms.testing import GraphEmulator, make_envelope, make_notification
    from graphcomms.webhook import _tokens

    emulator_box: list[GraphEmulator] = []
    real_settings = _tokens.TokenValidationSettings

    def settings(**kwargs: Any) -> Any:
        [emulator] = emulator_box
        kwargs["openid_configuration_url"] = emulator.openid_configuration_url
        kwargs["issuers"] = frozenset({emulator.issuer})
        return real_settings(**kwargs)

    monkeypatch.setattr("graphcomms.webhook.TokenValidationSettings", settings)

    async def serve(app: web.Application, port: int) -> None:
        from graphcomms import Call, CommsClient

        async with GraphEmulator(seed=0) as emulator:
            emulator_box.append(emulator)
            runner = web.AppRunner(app)
            await runner.setup()  # cleanup_ctx runs here
            clients = [app[key] for key in app if isinstance(app[key], CommsClient)]
            assert len(clients) == 1, "the block keeps its client on the app"
            [client] = clients
            try:
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                url = f"http://127.0.0.1:{runner.addresses[0][1]}{_CALLBACK_PATH}"
                body = make_envelope(
                    make_notification(Call(id="c1", state="established"), call_id="c1")
                )
                claims = {"aud": _BOT_APP_ID, "tid": _TENANT_ID}
                async with aiohttp.ClientSession() as http:
                    bearer = {"Authorization": f"Bearer {emulator.make_token(**claims)}"}
                    async with http.post(url, json=body, headers=bearer) as response:
                        assert response.status == 202, await response.text()
                    async with http.post(url, json=body) as response:
                        assert response.status == 401
                assert client.stats.notifications == 1
            finally:
                await runner.cleanup()
            assert client.closed

    monkeypatch.setenv("BOT_CLIENT_SECRET", "not-a-secret")

    def run_app(app: web.Application, *, port: int = 8080, **_: Any) -> None:
        asyncio.run(serve(app, port))

    return run_app


_BOT_APP_ID = "11111111-2222-3333-4444-555555555555"
_TENANT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
_CALLBACK_PATH = "/callback"
_SERVE_CHECKS: dict[str, Callable[[Any], Callable[..., None]]] = {"webhook": _webhook_check}


# -- types ------------------------------------------------------------------------------


def _as_module(block: Block) -> tuple[str, int]:
    """The block as a module mypy can check, and the line offset back to the document."""
    setup = block.options.get("setup")
    if "pytest" in block.options:
        return block.source, 0
    if setup is None:
        if "fragment" in block.options:
            # A fragment with no setup may await: check it as a coroutine's body.
            body = textwrap.indent(block.source, "    ")
            return f"async def _block() -> None:\n{body}", 1
        return block.source, 0
    declarations = SETUPS[setup].declarations
    head = declarations + "\n\nasync def _block() -> None:\n"
    return head + textwrap.indent(block.source, "    "), head.count("\n")


def test_blocks_type_check(tmp_path: Path) -> None:
    """mypy --strict, with the project's settings, on every block (fragments too)."""
    offsets: dict[str, tuple[Block, int]] = {}
    for index, block in enumerate(BLOCKS):
        if _missing(block):
            continue
        name = f"block_{index:02d}.py"
        source, offset = _as_module(block)
        (tmp_path / name).write_text(source, encoding="utf-8")
        offsets[name] = (block, offset)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--no-error-summary", "--show-error-codes", *sorted(str(tmp_path / n) for n in offsets)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    problems = []
    for line in result.stdout.splitlines():
        match = re.match(r".*?(block_\d+\.py):(\d+): (.*)", line)
        if match is None:
            problems.append(line)
            continue
        block, offset = offsets[match.group(1)]
        doc_line = block.line + int(match.group(2)) - 1 - offset
        problems.append(f"{block.path.relative_to(ROOT)}:{doc_line}: {match.group(3)}")
    assert result.returncode == 0, "\n".join(problems) + result.stderr
