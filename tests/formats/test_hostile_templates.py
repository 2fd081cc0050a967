"""Hostile template files (reliability-plan T5): a seed corpus and thousands of generated mutations.

Oracle for every input: either it is accepted and export(import(x)) is the canonical form of x, or it is
refused with exit 65 and one line naming the JSON path of the first problem — never a traceback, never
another exception, and the database's logical dump is unchanged.
"""

from __future__ import annotations

import copy
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from practiceplan.formats.templates import format as tf
from tests.formats.template_helpers import encoded, full_doc, logical_dump, minimal_doc, template_docs, with_path

FULL = full_doc()
RAW = encoded(FULL)
SEEDS = [
    FULL,
    minimal_doc(),
    minimal_doc(schedule={"kind": "single", "startDate": "2026-03-06", "timeOfDay": "17:00", "durationMinutes": 45}),
    minimal_doc(schedule={"kind": "recurring", "rule": "FREQ=MONTHLY;INTERVAL=1", "metadata": {"rrule": "FREQ=MONTHLY;BYDAY=2TU"}}),
]


def _segments_near_limit() -> bytes:
    doc = copy.deepcopy(FULL)
    doc["template"]["metadata"]["free"] = [{"label": "s"}] * 90_000  # free-form metadata: ~1 MiB
    data = encoded(doc)
    while len(data) > tf.MAX_FILE_BYTES:
        doc["template"]["metadata"]["free"] = doc["template"]["metadata"]["free"][:-2000]
        data = encoded(doc)
    return data


def _bomb(rule: str, exact: str | None = None) -> bytes:
    doc = with_path(FULL, ["template", "schedule", "rule"], rule)
    doc["parameters"] = [p for p in doc["parameters"] if p["name"] != "days"]
    if exact:
        doc["template"]["schedule"]["metadata"]["rrule"] = exact
    return encoded(doc)


CORPUS: dict[str, bytes] = {
    "empty": b"",
    "bom only": b"\xef\xbb\xbf",
    "utf-16": RAW.decode().encode("utf-16"),
    "invalid utf-8": RAW.replace(b"Warm-up", b"Warm\xc3\x28up"),
    "1000-deep nesting": b"[" * 1000 + b"]" * 1000,
    "1000-deep objects": b'{"a":' * 1000 + b"1" + b"}" * 1000,
    "5000-digit integer": RAW.replace(b'"templateVersion": 1', b'"templateVersion": ' + b"7" * 5000),
    "long float": RAW.replace(b'"durationMinutes": 30', b'"durationMinutes": 1.' + b"5" * 5000),
    "NaN": RAW.replace(b'"tempo": 80\n', b'"tempo": NaN\n'),
    "Infinity": RAW.replace(b'"tempo": 80\n', b'"tempo": Infinity\n'),
    "1e999": RAW.replace(b'"tempo": 80\n', b'"tempo": 1e999\n'),
    "duplicate keys": RAW.replace(b'"type": "course"', b'"type": "course", "type": "custom"'),
    "duplicate nested key": RAW.replace(b'"label": "Warm-up"', b'"label": "Warm-up", "label": "x"'),
    "lone surrogate": RAW.replace(b'"Three short', b'"\\ud83d short'),
    "ESC in title": RAW.replace(b'"Learn {{piece}}"', b'"\\u001b[2J\\u001b[HLearn {{piece}}"'),
    "OSC 52 in title": RAW.replace(b'"Learn {{piece}}"', b'"\\u001b]52;c;cm0gLXJmIH4=\\u0007Learn {{piece}}"'),
    "OSC 8 link in label": RAW.replace(b'"Warm-up"', b'"\\u001b]8;;https://evil.example\\u001b\\\\click\\u001b]8;;\\u001b\\\\"'),
    "C1 CSI in prompt": RAW.replace(b'"What went well?"', b'"\\u009b2J What went well?"'),
    "NUL in description": RAW.replace(b'"Three short', b'"\\u0000Three short'),
    "bidi override": RAW.replace(b'"Learn {{piece}}"', '"Learn \u202e}}eceip{{"'.encode()),
    "bidi isolate": RAW.replace(b'"Piece"', '"\u2067Piece\u2069"'.encode()),
    "zero-width space": RAW.replace(b'"Piece"', '"Pi\u200bece"'.encode()),
    "newline in title": RAW.replace(b'"Learn {{piece}}"', b'"Learn\\n{{piece}}"'),
    "10,000-character title": RAW.replace(b'"Learn {{piece}}"', b'"Learn {{piece}} ' + b"x" * 10_000 + b'"'),
    "100,000 segments": RAW.replace(b'"segments": [', b'"segments": [' + b'{"label": "s"},' * 100_000),
    "11 segments": encoded(with_path(FULL, ["template", "metadata", "segments"], [{"label": f"s{i}"} for i in range(11)])),
    "~1 MiB of values": _segments_near_limit(),
    "negative duration": RAW.replace(b'"durationMinutes": 10', b'"durationMinutes": -10'),
    "zero duration": RAW.replace(b'"durationMinutes": 10', b'"durationMinutes": 0'),
    "huge duration": RAW.replace(b'"durationMinutes": 10', b'"durationMinutes": 9007199254740991'),
    "year 0": RAW.replace(b'"startDate": "2026-03-02"', b'"startDate": "0000-03-02"'),
    "leap second": RAW.replace(b'"publishedAt": "2026-03-02T09:00:00.000Z"', b'"publishedAt": "2026-03-02T23:59:60.000Z"'),
    "RRULE bomb SECONDLY": _bomb("FREQ=SECONDLY;COUNT=1000000000"),
    "RRULE bomb MINUTELY": _bomb("FREQ=DAILY;INTERVAL=1", "FREQ=MINUTELY;COUNT=1000000000"),
    "RRULE bomb BYSETPOS": _bomb("FREQ=DAILY;INTERVAL=1", "FREQ=DAILY;BYHOUR=" + ",".join(map(str, range(24)))
                                 + ";BYMINUTE=" + ",".join(map(str, range(60))) + ";BYSETPOS=" + ",".join(map(str, range(1, 367)))),
    "RRULE BYSETPOS out of range": _bomb("FREQ=MONTHLY;INTERVAL=1", "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=367"),
    "RRULE never": _bomb("FREQ=MONTHLY;INTERVAL=12", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
    "RRULE with DTSTART": _bomb("FREQ=DAILY;INTERVAL=1", "DTSTART:19700101T000000Z\nRRULE:FREQ=DAILY"),
    "path traversal id": RAW.replace(b'"template_fulltemplate01"', b'"../../.ssh/id_rsa"'),
    "windows path id": RAW.replace(b'"template_fulltemplate01"', b'"C:\\\\x"'),
    "UNC path id": RAW.replace(b'"template_fulltemplate01"', b'"\\\\\\\\server\\\\share"'),
    "absolute path zone": RAW.replace(b'"America/New_York"', b'"/etc/passwd"'),
    "relative path zone": RAW.replace(b'"America/New_York"', b'"../../../../etc/localtime"'),
    "null where not nullable": RAW.replace(b'"flexibility": "fixed"', b'"flexibility": null'),
    "array root": b"[" + RAW + b"]",
    "truncated": RAW[: len(RAW) // 2],
    "trailing garbage": RAW + b"}",
    "YAML": b"format: practiceplan.template\nformatVersion: 1\n",
    "newer format": RAW.replace(b'"formatVersion": 1', b'"formatVersion": 2'),
    "reserved metadata": RAW.replace(b'"level": "beginner"', b'"level": "beginner", "provenance": {"kind": "import"}'),
}
assert all(name not in ("bom only",) or data for name, data in CORPUS.items())


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_seed_corpus_is_refused_with_a_path(name):
    data = CORPUS[name]
    with pytest.raises(tf.TemplateFormatError) as info:
        tf.parse_and_validate(data)
    error = info.value
    assert error.path and "\n" not in error.message and error.message.startswith(error.path + ": "), error.message


def test_bom_plus_valid_document_is_accepted():
    assert tf.parse_and_validate(b"\xef\xbb\xbf" + RAW).template_id == "template_fulltemplate01"


def test_far_future_until_is_fine_because_expansion_is_windowed():
    started = time.monotonic()
    tf.parse_and_validate(_bomb("FREQ=DAILY;INTERVAL=1;UNTIL=99991231T235959Z"))
    assert time.monotonic() - started < 1


# --------------------------------------------------------------------------- mutations


HOSTILE_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**53 - 1, 1.5, -0.0, "", " x ", "x", "\x1b[31mred", "\x9b", "\u202ertl", "\ud800",
    "a" * 2001, [], {}, [[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]], {"k": {"k": {"k": {}}}}, "FREQ=SECONDLY",
    "FREQ=MINUTELY", "24:00", "2026-02-30", "../../x", "{{nope}}", ["MO", "MO"], [{"title": ""}],
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _dump(doc: Any) -> bytes:
    """Like a hand-edited file: escapes keep lone surrogates expressible."""
    return json.dumps(doc, indent=2, ensure_ascii=True).encode()


def mutate(rng: random.Random) -> bytes:
    """One mutation of one seed: structural (JSON) or byte-level."""
    seed = rng.choice(SEEDS)
    op = rng.randrange(12)
    if op < 7:
        doc = copy.deepcopy(seed)
        paths = _paths(doc)
        path = rng.choice(paths)
        if op in (0, 1, 2):
            doc = _set(doc, path, copy.deepcopy(rng.choice(HOSTILE_VALUES)))
        elif op == 3 and path:
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            del parent[path[-1]]
        elif op == 4:
            target = rng.choice([p for p in paths if isinstance(_get(doc, p), dict)])
            _get(doc, target)[rng.choice(["extra", "ownerId", "\x1b", "parameters", "rule", "plan_id"])] = rng.choice(HOSTILE_VALUES)
        elif op == 5:
            target = rng.choice([p for p in paths if isinstance(_get(doc, p), list)] or [()])
            node = _get(doc, target)
            if isinstance(node, list) and node:
                node.extend(copy.deepcopy(node) * rng.randint(1, 12))
        else:
            data = _dump(doc)
            keys = [m for m in range(len(data)) if data[m:m + 1] == b'"' and data[m - 1:m] in (b" ", b"{")]
            at = rng.choice(keys) if keys else 1
            end = data.index(b'"', at + 1) + 1
            return data[:at] + data[at:end] + b": null, " + data[at:]  # duplicate a key
        return _dump(doc)
    data = bytearray(encoded(seed))
    position = rng.randrange(len(data))
    if op == 7:
        data[position] ^= 1 << rng.randrange(8)
    elif op == 8:
        data[position] = rng.randrange(256)
    elif op == 9:
        data[position:position] = bytes([rng.randrange(256)])
    elif op == 10:
        del data[position : position + rng.randint(1, 20)]
    else:
        end = min(len(data), position + rng.randint(1, 60))
        data[position:position] = data[position:end]
    return bytes(data)


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def check_oracle(data: bytes) -> str:
    """Accepted (and round-trips canonically) or refused with a one-line, path-naming error."""
    try:
        loaded = tf.parse_and_validate(data)
    except tf.TemplateFormatError as error:
        assert error.path, error.message
        assert "\n" not in error.message and error.message.startswith(error.path + ": "), error.message
        assert int(error.exit_code) == 65
        return "refused"
    again = tf.parse_and_validate(tf.encode(loaded.doc))
    assert tf.canonical_bytes(again.doc) == tf.canonical_bytes(json.loads(data.decode("utf-8-sig")))
    assert tf.encode(again.doc) == tf.encode(loaded.doc)
    return "accepted"


def generated_mutations(count: int, seed: int = 20260302) -> list[bytes]:
    rng = random.Random(seed)
    return [mutate(rng) for _ in range(count)]


def test_2500_seeded_mutations_through_parse_and_validate():
    outcomes = {"accepted": 0, "refused": 0}
    started = time.monotonic()
    for index, data in enumerate(generated_mutations(2500)):
        try:
            outcomes[check_oracle(data)] += 1
        except Exception as exc:  # report the input that broke the oracle
            pytest.fail(f"mutation {index} (seed 20260302) broke the oracle: {type(exc).__name__}: {exc}\n{data[:500]!r}")
    assert sum(outcomes.values()) == 2500
    assert outcomes["refused"] > 1500 and outcomes["accepted"] > 50, outcomes
    assert time.monotonic() - started < 30


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_json)
def test_garbage_json(value):
    data = json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    check_oracle(data)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(template_docs(), st.randoms(use_true_random=False), st.sampled_from(HOSTILE_VALUES))
def test_generated_documents_with_one_field_replaced(doc, rng, value):
    assert check_oracle(encoded(doc)) == "accepted"
    path = rng.choice(_paths(doc)[1:])
    check_oracle(_dump(_set(copy.deepcopy(doc), path, copy.deepcopy(value))))


# --------------------------------------------------------------------------- through the real CLI


@pytest.fixture
def populated(cli, isolated_home, tmp_path):
    """A database with a plan, occurrences and one imported template (so 'unchanged' means something)."""
    cli("plan", "add", "Scales", "--every", "daily", "--at", "18:00")
    good = tmp_path / "good.json"
    good.write_bytes(RAW)
    cli("template", "import", str(good), "--allow-unsigned")
    return isolated_home / "practiceplan.db"


def test_mutations_through_the_cli_leave_the_database_untouched(cli, populated, tmp_path):
    before = logical_dump(populated)
    refused = accepted = 0
    for index, data in enumerate(generated_mutations(400, seed=77)):
        try:
            outcome = check_oracle(data)
        except AssertionError:
            raise
        if outcome == "accepted" and accepted >= 5:
            continue
        if outcome == "refused" and refused >= 80:
            continue
        path = tmp_path / f"m{index}.json"
        path.write_bytes(data)
        result = cli("template", "import", str(path), "--allow-unsigned", ok=False)
        assert "Traceback" not in result.stderr
        if outcome == "refused":
            refused += 1
            assert result.code == 65, (index, result)
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"practiceplan: error: {path}: "), (index, result.stderr)
            assert logical_dump(populated) == before, index
        else:
            accepted += 1
            assert result.code in (0, 65), (index, result)  # 65: same id and version with other content
            before = logical_dump(populated)
    assert refused >= 80


def test_corpus_through_the_cli(cli, populated, tmp_path):
    before = logical_dump(populated)
    for name, data in sorted(CORPUS.items()):
        path = tmp_path / "hostile.json"
        path.write_bytes(data)
        for command in (("import", str(path), "--allow-unsigned"), ("lint", str(path)), ("preview", str(path))):
            result = cli("template", *command, ok=False)
            assert result.code == 65, (name, command, result)
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"practiceplan: error: {path}: "), (name, result.stderr)
            assert "Traceback" not in result.stderr and "\x1b" not in result.stderr and "\u202e" not in result.stderr
        assert logical_dump(populated) == before, name


def _limits() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))


SUBPROCESS_CASES = ["1000-deep nesting", "5000-digit integer", "100,000 segments", "~1 MiB of values", "RRULE bomb BYSETPOS",
                    "RRULE never", "lone surrogate", "OSC 52 in title"]


@pytest.mark.parametrize("name", [*SUBPROCESS_CASES, "50 MiB"])
def test_corpus_in_a_real_process_with_memory_and_time_limits(tmp_path, name, cli, populated):
    path = tmp_path / "hostile.json"
    if name == "50 MiB":
        with open(path, "wb") as handle:
            handle.truncate(50 << 20)
    else:
        path.write_bytes(CORPUS[name])
    before = logical_dump(populated)
    env = {"PRACTICEPLAN_HOME": str(populated.parent), "PRACTICEPLAN_TZ": "Europe/Berlin", "PATH": "/usr/bin:/bin",
           "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z", "NO_COLOR": "1"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "practiceplan", "template", "import", str(path), "--allow-unsigned"],
        env=env, capture_output=True, text=True, timeout=30, preexec_fn=_limits,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 65, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert elapsed < 5, elapsed
    assert logical_dump(populated) == before
    assert not list(Path(tmp_path).glob("*.tmp"))
