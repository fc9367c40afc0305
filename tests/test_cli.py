import subprocess
import sys

from cemlib.cli import SUBCOMMANDS, build_parser, main


def test_help_lists_every_subcommand(capsys):
    parser = build_parser()
    text = parser.format_help()
    for name in SUBCOMMANDS:
        assert name in text


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
