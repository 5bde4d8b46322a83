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
