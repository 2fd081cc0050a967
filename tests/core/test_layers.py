"""The dependency rules of ARCHITECTURE.md, checked by reading every module's imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "practiceplan"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = {p.relative_to(SRC).as_posix(): imports_of(p) for p in SRC.rglob("*.py")}


def top(name: str) -> str:
    return name.split(".")[0]


def test_modules_found():
    assert "domain/recurrence.py" in MODULES and "cli/app.py" in MODULES and len(MODULES) > 15


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("domain/")))
def test_domain_is_pure(module):
    for name in MODULES[module]:
        allowed = (
            top(name) in sys.stdlib_module_names
            or top(name) == "dateutil"
            or name.startswith("practiceplan.domain")
            or name == "practiceplan.errors"
        )
        assert allowed, f"{module} imports {name}: domain/ may import only the stdlib and dateutil"
    assert not {"sqlite3", "os", "io", "socket", "subprocess"} & {top(n) for n in MODULES[module]}, module


RULES = {
    "typer": ("cli/",),
    "rich": ("render/",),
    "sqlite3": ("store/", "server/"),
    "sqlite_utils": ("store/", "server/"),
    "dateparser": ("dates.py",),
    "httpx": ("sync/client.py",),
    "websockets": ("sync/live.py",),
    "sqlalchemy": ("server/",),
    "alembic": ("server/",),
    "starlette": ("server/",),
    "uvicorn": ("server/",),
    "psycopg": ("server/",),
}


@pytest.mark.parametrize("package", sorted(RULES))
def test_only_the_owning_layer_imports(package):
    for module, names in MODULES.items():
        if package in {top(n) for n in names}:
            assert module.startswith(RULES[package]), f"{module} imports {package}; only {RULES[package]} may"


def test_nobody_imports_click():
    for module, names in MODULES.items():
        assert "click" not in {top(n) for n in names}, f"{module} imports click (Typer vendors its own)"


@pytest.mark.parametrize(
    "args",
    [["--help"], ["today"], ["today", "--json"], ["next"], ["plan", "--help"], ["template", "--help"], ["completion", "bash"],
     ["login", "--help"], ["remote", "--help"], ["remote", "show"], ["auth", "status"], ["serve", "--help"],
     ["server", "--help"], ["server", "user", "add", "--help"]],
)
def test_startup_does_not_import_heavy_modules(args, tmp_path):
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['practiceplan', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('practiceplan', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('dateparser', 'sqlite_utils', 'httpx', 'keyring', 'click', 'pydantic', 'cryptography',"
        " 'sqlalchemy', 'starlette', 'uvicorn', 'alembic', 'psycopg') if m in sys.modules)\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    env = {"PRACTICEPLAN_HOME": str(tmp_path), "PRACTICEPLAN_TZ": "Europe/Berlin", "PATH": "/usr/bin:/bin",
           "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z"}
    # create and migrate the database first: migrating legitimately needs sqlite_utils
    subprocess.run([sys.executable, "-m", "practiceplan", "plan", "add", "Scales", "--every", "daily", "--at", "18:00"],
                   env=env, check=True, capture_output=True)
    fake = tmp_path / "fake-modules"  # an importable keyring (the real one is an optional extra): still not imported
    fake.mkdir()
    (fake / "keyring.py").write_text("def get_password(service, user):\n    return None\n")
    result = subprocess.run([sys.executable, "-c", probe, *args], env={**env, "PYTHONPATH": str(fake)},
                            capture_output=True, text=True)
    line = [x for x in result.stderr.splitlines() if x.startswith("HEAVY=")]
    assert line == ["HEAVY="], result.stderr


def test_today_for_scripts_does_not_load_rich(tmp_path):
    """Output that is not going to a terminal is plain text: `today` (the cron/status-bar command) skips Rich."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['practiceplan', 'today']\n"
        "try:\n"
        "    runpy.run_module('practiceplan', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write('RICH=' + str('rich' in sys.modules) + '\\n')\n"
    )
    env = {"PRACTICEPLAN_HOME": str(tmp_path), "PRACTICEPLAN_TZ": "Europe/Berlin", "PATH": "/usr/bin:/bin",
           "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z"}
    subprocess.run([sys.executable, "-m", "practiceplan", "plan", "add", "Scales", "--every", "daily", "--at", "18:00"],
                   env=env, check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert "RICH=False" in result.stderr, result.stderr
    assert "Scales" in result.stdout


# ----------------------------------------------------------------------------------------- services and cli

def _runtime_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import that runs, at module level or inside functions (not TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
    return found


RUNTIME = {p.relative_to(SRC).as_posix(): _runtime_imports(p) for p in SRC.rglob("*.py")}
# What cli/ may take from domain/: the input types and parsers a command line needs to validate what it was
# given before it calls a service. Everything that computes goes through services/.
CLI_DOMAIN_INPUTS = {"practiceplan.domain.models", "practiceplan.domain.plans", "practiceplan.domain.durations"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("services/")))
def test_services_know_nothing_of_the_interface(module):
    for name in MODULES[module]:
        assert top(name) not in {"typer", "rich", "click"}, f"{module} imports {name}"
        assert not name.startswith(("practiceplan.cli", "practiceplan.render")), f"{module} imports {name}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("cli/")))
def test_cli_goes_through_services(module):
    for name, _ in RUNTIME[module]:
        assert not name.startswith("practiceplan.store"), f"{module} reaches past services into {name}"
        if name.startswith("practiceplan.domain"):
            assert name in CLI_DOMAIN_INPUTS, f"{module} reaches past services into {name}"
    source = (SRC / module).read_text(encoding="utf-8")
    assert ".conn" not in source, f"{module} uses the raw SQLite connection"


def test_no_private_name_is_imported_across_modules():
    for module, imports in RUNTIME.items():
        for name, names in imports:
            if name.startswith("practiceplan"):
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                assert not private, f"{module} imports private {private} from {name}"


def test_no_import_cycles():
    """Module imports (function-level ones included) form no cycle among practiceplan's modules."""
    def name_of(rel: str) -> str:
        return "practiceplan." + rel[:-3].replace("/", ".").removesuffix(".__init__")

    modules = {name_of(rel) for rel in RUNTIME}
    graph: dict[str, set[str]] = {}
    for rel, imports in RUNTIME.items():
        edges = set()
        for name, names in imports:
            for target in [name, *(f"{name}.{n}" for n in names)]:
                if target in modules and not target.endswith(("practiceplan", "__init__")):
                    edges.add(target)
        graph[name_of(rel)] = edges - {name_of(rel)}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # the graph sees imports inside functions too (a lazy import is for start-up time, never to hide a cycle)
    assert "practiceplan.domain.recurrence" in graph["practiceplan.domain.occurrences"]
    assert "practiceplan.services.plans" in graph["practiceplan.services.session"]


def test_the_wire_format_is_pure():
    """sync/wire.py (the Mirubato format: schemas, rewrites, version hashes) is shared by the client and the
    server, so it imports only the standard library: no HTTP, no SQLite, no CLI."""
    for name in MODULES["sync/wire.py"]:
        assert top(name) in sys.stdlib_module_names, f"sync/wire.py imports {name}"


def test_the_sync_engine_does_not_touch_http_or_the_cli():
    for module in ("sync/engine.py", "services/sync.py"):
        tops = {top(n) for n in MODULES[module]}
        assert not {"httpx", "typer", "rich"} & tops, module
        assert not any(n.startswith(("practiceplan.cli", "practiceplan.render")) for n in MODULES[module]), module
