import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cemlib.cli import SUBCOMMANDS, build_parser, main


def _registered(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands the parser really has: its subparsers action's choices."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return dict(actions[0].choices)


def test_every_subcommand_is_registered_with_a_handler():
    registered = _registered(build_parser())
    assert list(registered) == list(SUBCOMMANDS)
    for name, sub in registered.items():
        handler = sub.get_default("func")
        assert callable(handler), name
        assert handler.__module__ == f"cemlib.cli.{name}", (name, handler.__module__)


ROOT = Path(__file__).resolve().parents[1]


def test_every_command_the_docs_name_is_registered():
    """Each `cem <command>` of the README and docs/ is a registered subcommand with its own
    module: deleting a CLI module (and its entry in SUBCOMMANDS) fails here."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    named = {m for p in pages for m in re.findall(r"`cem ([a-z_]+)", p.read_text("utf-8"))}
    registered = _registered(build_parser())
    assert named, "no command found in the docs"
    assert named == set(registered), (sorted(named), sorted(registered))
    for name in registered:
        assert (ROOT / "cemlib" / "cli" / f"{name}.py").is_file(), name


def test_every_cli_module_with_a_register_function_is_a_subcommand():
    modules = {
        p.stem
        for p in (ROOT / "cemlib" / "cli").glob("*.py")
        if "def register(" in p.read_text("utf-8")
    }
    assert modules == set(SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_help_exits_0(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: cem {name}"), out[:200]
    assert list(_registered(build_parser(only=name))) == [name]


def test_a_missing_subcommand_module_is_an_error_not_skipped(monkeypatch):
    monkeypatch.setattr("cemlib.cli.SUBCOMMANDS", (*SUBCOMMANDS, "no_such_command"))
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("cemlib.cli").build_parser()


def test_only_the_chosen_subcommand_is_imported():
    code = (
        "import sys; from cemlib.cli import build_parser; build_parser(only='generate'); "
        "print(int('cemlib.cli.offers' in sys.modules), int('shap' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
