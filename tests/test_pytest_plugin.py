"""The pytest plugin, as a user's test suite sees it: installed through the pytest11
entry point, fixtures usable from a plain ``async def`` test, with no configuration.

Each run is a fresh pytest process in a temporary directory whose ``tox.ini`` has an
empty ``[pytest]`` section: it sets nothing, and stops pytest from looking further up
for an ini file (this repository's ``pyproject.toml`` sets ``asyncio_mode = auto``,
which a user's suite does not have).
"""

from __future__ import annotations

import importlib.metadata
import re

import pytest
from packaging.requirements import Requirement

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest
from graphcomms import CallState, MediaPrompt, OperationStatus

async def test_a_bot_answers_and_plays(emulated_bot):
    client, emulator = emulated_bot.client, emulated_bot.emulator
    calls = client.incoming_calls()
    await emulator.simulate_incoming_call(callback_uri=emulated_bot.callback_uri)
    call = await calls.__anext__()
    await call.answer()
    await call.wait_for_state(CallState.ESTABLISHED, timeout=5)
    op = await call.play_prompt(MediaPrompt.from_uri("https://example.com/hi.wav"))
    assert (await op).status == OperationStatus.COMPLETED
    assert emulated_bot.receiver.stats.accepted >= 3

async def test_graph_client_is_the_bots_client(graph_client, emulated_bot):
    assert graph_client is emulated_bot.client
    assert graph_client.callback_uri.startswith("http://127.0.0.1:")

async def test_graph_emulator_alone(graph_emulator):
    assert graph_emulator.graph_url.endswith("/v1.0/")

@pytest.fixture
def through_a_fixture_of_mine(graph_emulator):
    return graph_emulator

async def test_a_fixture_that_uses_one(through_a_fixture_of_mine):
    assert through_a_fixture_of_mine.graph_url.endswith("/v1.0/")

class TestInAClass:
    @pytest.mark.parametrize("version", ["v1.0", "beta"])
    async def test_parametrized(self, graph_emulator, version):
        assert (graph_emulator.graph_url if version == "v1.0" else graph_emulator.beta_url).endswith(f"/{version}/")

@pytest.mark.asyncio(loop_scope="module")
async def test_a_users_own_mark_is_kept(graph_emulator, request):
    assert request.node.get_closest_marker("asyncio").kwargs == {"loop_scope": "module"}
"""

# Not ours to take over: in strict mode an unmarked coroutine test that uses none of
# graphcomms's fixtures is pytest-asyncio's business (it is not run).
NOT_OURS = """
async def test_uses_no_graphcomms_fixture():
    pass
"""

# -W error makes every warning fail the run, except pytest-asyncio's own note that the
# user has not set asyncio_default_fixture_loop_scope (it is about their configuration,
# and graphcomms's fixtures work either way).
NO_WARNINGS = (
    "-W",
    "error",
    "-W",
    "ignore:The configuration option:pytest.PytestDeprecationWarning",
)


def _users_suite(pytester: pytest.Pytester, *extra_files: str) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        test_user=USER_TESTS, **{f"test_extra_{i}": s for i, s in enumerate(extra_files)}
    )


def test_fixtures_work_in_strict_mode_with_no_configuration(pytester: pytest.Pytester) -> None:
    _users_suite(pytester, NOT_OURS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *NO_WARNINGS)
    result.stdout.re_match_lines([r"(?i)asyncio: mode=(mode\.)?strict\b"])
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(
        ["*_ test_uses_no_graphcomms_fixture _*", "async def functions are not natively supported."]
    )


def test_fixtures_work_in_auto_mode_with_no_ini_file(pytester: pytest.Pytester) -> None:
    _users_suite(pytester)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asyncio-mode=auto", *NO_WARNINGS
    )
    result.stdout.re_match_lines([r"(?i)asyncio: mode=(mode\.)?auto\b"])
    result.assert_outcomes(passed=7)


def test_without_pytest_asyncio_the_fixtures_say_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    _users_suite(pytester)
    # As if pytest-asyncio were not installed: its import fails and its plugin is off.
    pytester.makepyfile(no_pytest_asyncio="import sys\nsys.modules['pytest_asyncio'] = None\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no_pytest_asyncio", "-p", "no:asyncio"
    )
    result.assert_outcomes(errors=7)
    result.stdout.re_match_lines(
        [
            ".*"
            + re.escape(
                'run on pytest-asyncio, which is not installed: pip install "graphcomms[testing]"'
            )
        ]
    )
    result.stdout.no_fnmatch_line("*fixture * not found*")


def test_without_pyjwt_the_emulator_says_what_to_install(pytester: pytest.Pytester) -> None:
    _users_suite(pytester)
    pytester.makepyfile(no_pyjwt="import sys\nsys.modules['jwt'] = None\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no_pyjwt")
    result.assert_outcomes(errors=7)
    result.stdout.re_match_lines(
        [
            r"E +ModuleNotFoundError: the Graph emulator signs .*"
            + re.escape('pip install "graphcomms[testing]"')
        ]
    )


def test_the_testing_extra_brings_what_the_fixtures_run_on() -> None:
    requirements = [Requirement(r) for r in importlib.metadata.requires("graphcomms") or ()]
    testing = {
        r.name: r
        for r in requirements
        if r.marker is not None and r.marker.evaluate({"extra": "testing"})
    }
    assert {"pyjwt", "pytest", "pytest-asyncio"} <= set(testing)
    # The same floors as the test extra's, which the floor job proves.
    test = {
        r.name: r
        for r in requirements
        if r.marker is not None and r.marker.evaluate({"extra": "test"})
    }
    for name in ("pytest", "pytest-asyncio"):
        assert testing[name].specifier == test[name].specifier
