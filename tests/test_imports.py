"""airsync.imports.hidden: an optional extra stays out while a library is imported, and is
importable again right after; httpx and structlog come without their command line and rich.
airsync.imports.deferred: a module imported inside the block is a stand-in, imported for real at
its first use; structlog comes without asyncio."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airsync.imports import deferred, hidden


def test_a_hidden_module_cannot_be_imported_in_the_block_and_can_after():
    sys.modules.pop("colorsys", None)
    with hidden("colorsys"):
        with pytest.raises(ImportError):
            import colorsys  # noqa: F401
    import colorsys

    assert colorsys.rgb_to_hsv(1, 0, 0)[0] == 0


def test_a_module_already_imported_is_left_alone():
    import json

    with hidden("json"):
        import json as again
    assert again is json and sys.modules["json"] is json


def test_a_deferred_module_is_imported_at_its_first_use_and_for_real_after_the_block():
    sys.modules.pop("colorsys", None)
    with deferred("colorsys"):
        import colorsys as stand_in
    assert "colorsys" not in sys.modules  # nothing imported yet, and no stand-in left behind
    assert stand_in.rgb_to_hsv(1, 0, 0)[0] == 0  # the first use imports it
    import colorsys

    assert type(colorsys) is not type(stand_in) and sys.modules["colorsys"] is colorsys


def test_a_deferred_module_used_inside_the_block_is_the_real_one():
    sys.modules.pop("colorsys", None)
    with deferred("colorsys"):
        import colorsys as stand_in

        assert stand_in.rgb_to_hsv(1, 0, 0)[0] == 0
        import colorsys
    assert sys.modules["colorsys"] is colorsys and type(colorsys) is not type(stand_in)


def test_a_module_already_imported_is_not_deferred():
    import json

    with deferred("json"):
        import json as again
    assert again is json


def test_a_missing_module_is_not_deferred_and_a_deferred_package_has_no_submodules_in_the_block():
    with deferred("airsync_no_such_module"):
        with pytest.raises(ImportError):
            import airsync_no_such_module  # noqa: F401
    code = (  # in a fresh interpreter: nothing has imported the package yet
        "import sys\n"
        "from airsync.imports import deferred\n"
        "with deferred('email'):\n"
        "    try:\n"
        "        import email.utils\n"  # would run email.utils twice: once by the package, once here
        "    except ImportError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit('a submodule of a deferred package was imported in the block')\n"
        "import email.utils\n"
        "assert sys.modules['email.utils'] is email.utils and email.utils.parseaddr('a <b@c>') == ('a', 'b@c')\n"
    )
    _passes_alone(code)


def test_httpx_and_structlog_come_without_click_rich_and_asyncio_which_stay_importable():
    # In the order of the command line: logging set up first, then the commands' modules. click
    # is installed in the test environment (with import-linter), so its hiding is tested.
    code = (
        "import sys\n"
        "import airsync.log\n"
        "airsync.log.setup('info', 'json')\n"
        "import airsync.fetch.fetcher, airsync.carry.pull\n"
        "__import__('structlog').get_logger().info('logged')\n"
        "assert not {'click', 'rich', 'asyncio'} & set(sys.modules), sorted(sys.modules)\n"
        "import click, rich, httpx, asyncio\n"
        "assert asyncio.run and sys.modules['structlog.stdlib'].asyncio.get_running_loop is asyncio.get_running_loop\n"
    )
    _passes_alone(code)


def test_a_mirror_job_imports_no_toml_parser_vulndb_manifest_or_cryptography():
    # Start-up is most of a small mirror's time: these come only with a config file, a vulndb
    # setting, a carry or a checksum database (each measured at 3-10 ms).
    code = (
        "import sys\n"
        "import airsync.cli, airsync.config, airsync.mirror.job, airsync.mirror.progress\n"
        "import airsync.fetch.fetcher, airsync.carry.signatures\n"
        "bad = {'tomllib', 'airsync.vulndb.db', 'airsync.carry.manifest', 'cryptography'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    _passes_alone(code)


def _passes_alone(code: str) -> None:
    """Run ``code`` in a fresh interpreter (nothing imported yet); it must get to its end."""
    r = subprocess.run([sys.executable, "-c", code + "print('ok')\n"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
