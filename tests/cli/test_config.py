"""`config set` rewrites config.toml keeping every other key and value type (through tomli-w)."""

from __future__ import annotations

import stat
import tomllib

from practiceplan.services.session import Session
from practiceplan.settings import Settings

EXISTING = """\
# my own notes
week_start = "sunday"
dip_hook = "notify-send 'Practice dip'"
quiet = true
ratio = 0.75
instruments = ["piano", "violin", 3]
when = 2026-03-02T09:00:00Z

[sync]
server = "https://example.org"
retries = 4
verify = false

[sync.extra]
nested = [1.5, 2.5]
"""


def test_set_keeps_every_other_key_and_type(cli, isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    path = isolated_home / "config.toml"
    path.write_text(EXISTING, encoding="utf-8")
    before = tomllib.loads(EXISTING)
    result = cli("config", "set", "daily_capacity", "90")
    assert result.stdout == "daily_capacity = 90\n"
    after = tomllib.loads(path.read_text(encoding="utf-8"))
    assert after == {**before, "daily_capacity": 90}
    for key in ("quiet", "ratio", "instruments", "when", "sync"):
        assert type(after[key]) is type(before[key]), key
    assert after["sync"]["extra"]["nested"] == [1.5, 2.5] and after["sync"]["verify"] is False
    assert Settings().config["daily_capacity"] == 90 and Settings().config["week_start"] == "sunday"
    assert cli("config", "show", "--json").json["daily_capacity"] == 90
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8").startswith("# practiceplan settings")
    assert [p.name for p in isolated_home.iterdir() if p.name.startswith(".")] == []


def test_set_a_new_key_after_tables_stays_top_level(cli, isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "config.toml").write_text("[sync]\nserver = \"x\"\n", encoding="utf-8")
    cli("config", "set", "dip_hook", "notify-send \"dip\" 'now'")
    data = tomllib.loads((isolated_home / "config.toml").read_text(encoding="utf-8"))
    assert data == {"sync": {"server": "x"}, "dip_hook": "notify-send \"dip\" 'now'"}
    assert Settings().config["dip_hook"] == "notify-send \"dip\" 'now'"


def test_set_without_a_config_file_creates_it(cli, isolated_home):
    cli("config", "set", "week_start", "Sunday")
    assert Settings().config["week_start"] == "sunday"
    assert tomllib.loads((isolated_home / "config.toml").read_text(encoding="utf-8")) == {"week_start": "sunday"}


def test_a_damaged_config_file_is_refused_and_left_alone(cli, isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    path = isolated_home / "config.toml"
    path.write_text("daily_capacity = [unclosed\n", encoding="utf-8")
    result = cli("config", "set", "daily_capacity", "90", ok=False)
    assert result.code == 65 and f"config file {path} is not valid TOML" in result.stderr
    assert path.read_text(encoding="utf-8") == "daily_capacity = [unclosed\n"


def test_the_service_without_the_cli(isolated_home):
    session = Session(Settings())
    assert session.config.set("upcoming", "7") == 7
    assert Session(Settings()).config.values()["upcoming"] == 7
    assert session.config.paths()["configFile"] == str(isolated_home / "config.toml")
