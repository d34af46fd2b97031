"""The ``ert`` command line: every subcommand's help renders (argparse formats it lazily)."""

from __future__ import annotations

from core.cli import build_parser, main

import argparse

import pytest


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


@pytest.mark.parametrize("command", [None, *_subcommands()])
def test_help_renders_for_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"] if command is None else [command, "--help"])
    assert exit_.value.code == 0
    assert "usage: ert" in capsys.readouterr().out


def test_serve_help_shows_the_default_port(capsys):
    from core.api.settings import ServeSettings

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert f"(default {ServeSettings.port})" in capsys.readouterr().out
