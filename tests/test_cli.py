import argparse
import importlib
import subprocess
import sys

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
