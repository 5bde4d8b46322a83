"""The public namespace is deliberate: sorted, complete, importable."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "graphcomms",
    "graphcomms.models",
    "graphcomms.errors",
    "graphcomms.testing",
    "graphcomms.auth",
    "graphcomms.typing",
    "graphcomms.webhook",
    "graphcomms.fleet",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_unique_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    names = list(module.__all__)
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for public in names:
        assert getattr(module, public) is not None, public


def test_version_comes_from_package_metadata() -> None:
    from importlib.metadata import version

    import graphcomms

    assert graphcomms.__version__ == version("graphcomms")


def test_no_private_name_is_exported() -> None:
    import graphcomms

    assert not [n for n in graphcomms.__all__ if n.startswith("_")]


def test_core_import_does_not_need_the_extras() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['jwt'] = None; sys.modules['azure'] = None\n"
        "sys.modules['redis'] = None\n"
        "import graphcomms, graphcomms.models, graphcomms.errors, graphcomms.auth\n"
        "assert 'jwt' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        # aiohttp costs a third of a cold start; it loads on the first request instead.
        "assert 'aiohttp' not in sys.modules, 'import graphcomms loaded aiohttp'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_emulator_without_the_testing_extra_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['jwt'] = None\n"
        "from graphcomms.testing import make_operation  # the builders need no extra\n"
        "try:\n"
        "    from graphcomms.testing import GraphEmulator\n"
        "except ModuleNotFoundError as exc:\n"
        "    assert exc.name == 'jwt', exc.name\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported without PyJWT')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "graphcomms[testing]"' in done.stdout


def test_the_readme_names_every_logger() -> None:
    import re
    from pathlib import Path

    import graphcomms

    package = Path(graphcomms.__file__).parent
    loggers = {
        name
        for source in package.rglob("*.py")
        for name in re.findall(r"getLogger\(\"([\w.]+)\"\)", source.read_text())
    }
    assert "graphcomms.callbacks" in loggers
    readme = (package.parent / "README.md").read_text()
    [listed] = re.findall(r"Logs go to the `graphcomms` logger tree \(([^)]*)\)", readme)
    assert set(re.findall(r"`([\w.]+)`", listed)) == loggers
