"""`practiceplan server user add|list|revoke`, `server backup` and `serve`'s refusals, on both backends."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from practiceplan.cli.app import app
from practiceplan.server import users


def run(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=True)


def test_user_add_list_revoke_and_backup(srv, tmp_path):
    where = srv.url
    added = run("server", "user", "add", "anna", "--role", "tutor", "--database", where, "--json")
    assert added.exit_code == 0, added.stderr
    token = json.loads(added.stdout)["token"]
    assert users.authenticate(srv.engine, token).role == "tutor"
    again = run("server", "user", "add", "anna", "--database", where)
    assert again.exit_code == 65 and again.stderr.startswith("practiceplan: error: user 'anna' already exists")
    assert run("server", "user", "add", "bob", "--role", "boss", "--database", where).exit_code == 2
    listed = json.loads(run("server", "user", "list", "--database", where, "--json").stdout)["users"]
    assert [(u["name"], u["role"], u["active"]) for u in listed] == [("anna", "tutor", True)]
    assert token not in run("server", "user", "list", "--database", where).stdout
    assert run("server", "user", "revoke", "anna", "--database", where).exit_code == 0
    assert users.authenticate(srv.engine, token) is None
    assert run("server", "user", "revoke", "nobody", "--database", where).exit_code == 3
    backup = run("server", "backup", "-o", str(tmp_path / "copy.db"), "--database", where)
    assert backup.exit_code == 0, backup.stderr
    if srv.backend == "sqlite":
        assert (tmp_path / "copy.db").stat().st_size > 0
    else:
        assert "pg_dump" in backup.stdout and not (tmp_path / "copy.db").exists()


def test_serve_refuses_root_and_an_unreachable_database(tmp_path):
    import os

    if os.geteuid() == 0:
        refused = run("serve", "--database", str(tmp_path / "s.db"))
        assert refused.exit_code == 77 and "--allow-root" in refused.stderr
    down = run("serve", "--allow-root", "--database", "postgresql://nobody@127.0.0.1:1/none")
    assert down.exit_code == 69 and "cannot open the server database" in down.stderr
    assert "nobody@" in down.stderr and down.stderr.count("\n") == 2
