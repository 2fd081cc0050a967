"""The template file format: every rule refuses with a one-line message naming the JSON path."""

from __future__ import annotations

import os

import pytest

from practiceplan.errors import InvalidInputError, NotFoundError
from practiceplan.formats.templates import format as tf
from tests.formats.template_helpers import encoded, full_doc, minimal_doc, with_path, without


def refuse(doc_or_bytes, limits=tf.Limits()) -> tf.TemplateFormatError:
    data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else encoded(doc_or_bytes)
    with pytest.raises(tf.TemplateFormatError) as info:
        tf.parse_and_validate(data, limits)
    assert "\n" not in info.value.message
    return info.value


def test_valid_documents_parse():
    full = tf.parse_and_validate(encoded(full_doc()))
    assert full.template_id == "template_fulltemplate01" and full.version == 1
    assert [p["name"] for p in full.parameters] == ["piece", "days", "at", "length", "focus", "tempo"]
    assert full.signature is None and "signature" not in full.content()
    minimal = tf.parse_and_validate(encoded(minimal_doc()))
    assert minimal.parameters == []


FULL = full_doc()
T = ["template"]
M = ["template", "metadata"]
S = ["template", "schedule"]

CASES = [
    # (mutated document, expected path, words in the problem)
    (with_path(FULL, [*M, "segments", 1, "durationMinutes"], 0), "template.metadata.segments[1].durationMinutes", "whole number of minutes"),
    (with_path(FULL, [*M, "segments", 1, "durationMinutes"], 2.5), "template.metadata.segments[1].durationMinutes", "whole number"),
    (with_path(FULL, [*M, "segments", 1, "durationMinutes"], True), "template.metadata.segments[1].durationMinutes", "whole number"),
    (with_path(FULL, [*M, "segments", 0, "label"], ""), "template.metadata.segments[0].label", "empty"),
    (with_path(FULL, [*M, "segments", 0, "colour"], "red"), "template.metadata.segments[0].colour", "unknown field"),
    (with_path(FULL, [*M, "segments"], [{"label": f"s{i}"} for i in range(11)]), "template.metadata.segments", "at most 10"),
    (with_path(FULL, [*M, "reflectionPrompts"], ["a", "b", "c", "d", "e", "f"]), "template.metadata.reflectionPrompts", "limit of 5"),
    (with_path(FULL, [*M, "targets"], {"tempo": {"nested": 1}}), "template.metadata.targets.tempo", "number, a string"),
    (with_path(FULL, [*M, "targets"], {"tempo": True}), "template.metadata.targets.tempo", "number, a string"),
    (with_path(FULL, [*M, "targets"], {"9bad": 1}), 'template.metadata.targets["9bad"]', "target names"),
    (with_path(FULL, [*M, "parameters"], []), "template.metadata.parameters", "reserved"),
    (with_path(FULL, [*M, "provenance"], {}), "template.metadata.provenance", "reserved"),
    (with_path(FULL, [*M], []), "template.metadata", "expected an object"),
    (with_path(FULL, [*T, "visibility"], "shared"), "template.visibility", '"public", "private"'),
    (with_path(FULL, [*T, "type"], "Course"), "template.type", "bootcamp"),
    (with_path(FULL, [*T, "sourcePlanId"], None), "template.sourcePlanId", "expected a string"),
    (with_path(FULL, [*T, "title"], ""), "template.title", "empty"),
    (with_path(FULL, [*T, "title"], " padded "), "template.title", "leading or trailing"),
    (with_path(FULL, [*T, "title"], "x" * 201), "template.title", "longer than 200"),
    (with_path(FULL, [*T, "title"], "Scales \x1b[2J"), "template.title", "U+001B"),
    (with_path(FULL, [*T, "title"], "Scales \u202eevil"), "template.title", "U+202E"),
    (with_path(FULL, [*T, "title"], "line\nbreak"), "template.title", "U+000A"),
    (with_path(FULL, [*T, "description"], "tab\there"), "template.description", "U+0009"),
    (with_path(FULL, [*T, "tags"], ["ok", None]), "template.tags[1]", "expected a string"),
    (with_path(FULL, [*T, "tags"], None), "template.tags", "array of strings"),
    (with_path(FULL, [*T, "pieceRefs"], [{"composer": "Bach"}]), "template.pieceRefs[0]", "title or a scoreId"),
    (with_path(FULL, [*T, "templateVersion"], 0), "template.templateVersion", "from 1"),
    (with_path(FULL, [*T, "adoptionCount"], -1), "template.adoptionCount", "from 0"),
    (with_path(FULL, [*T, "createdAt"], "2026-03-02T23:59:60Z"), "template.createdAt", "real date"),
    (with_path(FULL, [*T, "createdAt"], "2026-03-02"), "template.createdAt", "UTC instant"),
    (with_path(FULL, [*T, "deletedAt"], "2026-03-02T00:00:00Z"), "template.deletedAt", "deleted"),
    (with_path(FULL, [*T, "id"], "../../etc/passwd"), "template.id", "A-Z a-z"),
    (with_path(FULL, [*T, "ownerId"], "x"), "template.ownerId", "unknown field"),
    (without(FULL, [*T, "schedule"]), "template.schedule", "missing"),
    (without(FULL, [*S, "kind"]), "template.schedule.kind", "missing"),
    (with_path(FULL, [*S, "kind"], "weekly"), "template.schedule.kind", '"single"'),
    (with_path(FULL, [*S, "rule"], "RRULE:FREQ=WEEKLY;BYDAY=MO"), "template.schedule.rule", "expected 'FREQ=WEEKLY;INTERVAL=1;BYDAY=MO'"),
    (with_path(FULL, [*S, "rule"], "FREQ=SECONDLY;COUNT=1000000000"), "template.schedule.rule", "SECONDLY"),
    (with_path(FULL, [*S, "rule"], "FREQ=DAILY;INTERVAL=1;BYHOUR=1,2,3,4,5,6,7,8"), "template.schedule.rule", "expected"),
    (with_path(with_path(FULL, [*S, "metadata", "rrule"], "FREQ=MINUTELY;INTERVAL=1"), [*S, "rule"], "FREQ=DAILY;INTERVAL=1"),
     "template.schedule.metadata.rrule", "more than 2000 sessions"),
    (with_path(with_path(FULL, [*S, "metadata", "rrule"], "FREQ=YEARLY;BYMONTH=3"), [*S, "rule"], "FREQ=MONTHLY;INTERVAL=12"),
     "parameters[1].targets[0]", "DAILY or WEEKLY"),
    (with_path(FULL, [*S, "durationMinutes"], 1441), "template.schedule.durationMinutes", "to 1440"),
    (with_path(FULL, [*S, "timeOfDay"], "24:00"), "template.schedule.timeOfDay", "HH:MM"),
    (with_path(FULL, [*S, "flexibility"], None), "template.schedule.flexibility", '"fixed"'),
    (with_path(FULL, [*S, "startDate"], "0000-01-01"), "template.schedule.startDate", "real date"),
    (with_path(FULL, [*S, "startDate"], "2026-02-30"), "template.schedule.startDate", "real date"),
    (with_path(FULL, [*S, "endDate"], "2026-01-01"), "template.schedule.endDate", "before startDate"),
    (with_path(FULL, [*S, "metadata", "timezone"], "Mars/Olympus"), "template.schedule.metadata.timezone", "unknown time zone"),
    (with_path(FULL, [*S, "metadata", "recurrence"], {"frequency": "YEARLY"}), "template.schedule.metadata.recurrence.frequency", "DAILY"),
    (with_path(without(FULL, [*S, "timeOfDay"]), [*S, "flexibility"], "fixed"), "template.schedule.flexibility", "timeOfDay"),
    (with_path(FULL, ["formatVersion"], 2), "formatVersion", "newer than this practiceplan"),
    (with_path(FULL, ["format"], "mirubato"), "format", "practiceplan.template"),
    (with_path(FULL, ["extra"], 1), "extra", "unknown field"),
    (without(FULL, ["template"]), "template", "missing"),
    (with_path(FULL, ["parameters", 0, "name"], "Piece"), "parameters[0].name", "a-z"),
    (with_path(with_path(with_path(FULL, [*S, "metadata", "rrule"], "FREQ=YEARLY;BYMONTHDAY=31;BYMONTH=2"), [*S, "rule"],
               "FREQ=MONTHLY;INTERVAL=12"), ["parameters"], []), "template.schedule.metadata.rrule", "never"),
    (with_path(FULL, ["parameters", 1, "name"], "piece"), "parameters[1].name", "declared twice"),
    (with_path(FULL, ["parameters", 0, "type"], "piece"), "parameters[0].type", '"text"'),
    (with_path(FULL, ["parameters", 0, "targets"], []), "parameters[0].targets", "non-empty"),
    (with_path(FULL, ["parameters", 0, "targets"], ["segments[7].pieceRefs"]), "parameters[0].targets[0]", "no segment 7"),
    (with_path(FULL, ["parameters", 0, "targets"], ["schedule.timeOfDay"]), "parameters[0].targets[0]", "cannot fill"),
    (with_path(FULL, ["parameters", 0, "targets"], ["colour"]), "parameters[0].targets[0]", "unknown target"),
    (with_path(FULL, ["parameters", 1, "default"], ["XX"]), "parameters[1].default", "weekday codes"),
    (with_path(FULL, ["parameters", 3, "default"], 500), "parameters[3].default", "from 10 to 120"),
    (with_path(FULL, ["parameters", 3, "min"], 200), "parameters[3].max", "less than min"),
    (with_path(FULL, ["parameters", 4, "choices"], []), "parameters[4].choices", "at least one"),
    (without(FULL, ["parameters", 4, "choices"]), "parameters[4].choices", "needs choices"),
    (with_path(FULL, ["parameters", 4, "default"], "pitch"), "parameters[4].default", "one of: tone, rhythm"),
    (with_path(FULL, ["parameters", 2, "choices"], ["a"]), "parameters[2].choices", "only choice"),
    (with_path(FULL, [*T, "title"], "Learn"), "parameters[0].targets[2]", "no {{piece}} placeholder"),
    (with_path(FULL, [*T, "title"], "Learn {{piece}} {{nope}}"), "template.title", "{{nope}} is not a declared"),
    (with_path(FULL, [*M, "reflectionPrompts", 0], "How was {{focus}}?"), "template.metadata.reflectionPrompts[0]",
     "does not list reflectionPrompts"),
    (with_path(FULL, ["signature"], {"algorithm": "rsa", "publicKey": "0" * 64, "value": "0" * 128}), "signature.algorithm", "ed25519"),
    (with_path(FULL, ["signature"], {"algorithm": "ed25519", "publicKey": "A" * 64, "value": "0" * 128}), "signature.publicKey", "lowercase hex"),
    (with_path(FULL, ["signature"], {"algorithm": "ed25519", "publicKey": "0" * 64, "value": "0" * 128, "by": "me"}), "signature.by", "unknown field"),
]


@pytest.mark.parametrize("doc, path, words", CASES, ids=[c[1] + ":" + c[2][:20] for c in CASES])
def test_field_rules_name_the_path(doc, path, words):
    error = refuse(doc)
    assert error.path == path, error.message
    assert words in error.problem, error.message
    assert error.message == f"{path}: {error.problem}"
    assert int(error.exit_code) == 65 and error.hint is None


RAW = encoded(FULL)

DECODE_CASES = [
    (b"", "file", "empty"),
    (b"  \n ", "file", "empty"),
    (b"\xff\xfe{}", "file", "not UTF-8"),
    ('{"a": 1}'.encode("utf-16"), "file", "not UTF-8"),
    (b"[" * 1000 + b"]" * 1000, "file", "nested more than 16"),
    (b"[" * 40 + b"]" * 40, "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]", "nested more than 16"),
    (b'{"format": "practiceplan.template", "formatVersion": 1, "template": {"templateVersion": ' + b"9" * 5000 + b"}}",
     "template.templateVersion", "5000 digits"),
    (RAW.replace(b'"durationMinutes": 30', b'"durationMinutes": NaN'), "template.schedule.durationMinutes", "NaN"),
    (RAW.replace(b'"durationMinutes": 30', b'"durationMinutes": -Infinity'), "template.schedule.durationMinutes", "-Infinity"),
    (RAW.replace(b'"durationMinutes": 30', b'"durationMinutes": 1e999'), "template.schedule.durationMinutes", "out of range"),
    (RAW.replace(b'"durationMinutes": 30', b'"durationMinutes": 9007199254740993'), "template.schedule.durationMinutes", "2^53"),
    (RAW.replace(b'"title": "Learn {{piece}}"', b'"title": "A", "title": "B"'), "template.title", "duplicate key"),
    (RAW.replace(b'"Three short', b'"\\ud800Three short'), "template.description", "lone surrogate"),
    (RAW.replace(b'"Three short', b'"\\udfff\\ud800 short'), "template.description", "lone surrogate"),
    (RAW.replace(b'"Learn {{piece}}"', b'"Learn \\u001b]52;c;aGk=\\u0007 {{piece}}"'), "template.title", "U+001B"),
    (RAW.replace(b'"Learn {{piece}}"', b'"Learn \\u009b31m {{piece}}"'), "template.title", "U+009B"),
    (RAW.replace(b'"Learn {{piece}}"', b'"Learn \\u0000 {{piece}}"'), "template.title", "U+0000"),
    (RAW.replace(b'"Learn {{piece}}"', '"Learn \u2066x\u2069 {{piece}}"'.encode()), "template.title", "U+2066"),
    (RAW.replace(b'"Learn {{piece}}"', b'"Learn \x1b {{piece}}"'), "file", "Invalid control character"),
    (RAW[:-20], "file", "not valid JSON"),
    (b'{"format": "practiceplan.template"} trailing', "file", "Extra data"),
    (b"[]", "document", "expected an object"),
    (b'"just a string"', "document", "expected an object"),
    (RAW.replace(b'"tags": [', b'"tags": [' + b'"t",' * 1001), "template.tags", "more than 1000 items"),
    (RAW.replace(b'"instrument": "piano"', b'"instrument": "piano", "\\u001bkey": 1'), 'template.metadata["\\u001bkey"]', "key contains"),
    (RAW.replace(b'"instrument": "piano"', b'"instrument": "' + b"p" * 2001 + b'"'), "template.metadata.instrument", "longer than 2000"),
]


@pytest.mark.parametrize("data, path, words", DECODE_CASES, ids=[f"{i}:{c[2][:24]}" for i, c in enumerate(DECODE_CASES)])
def test_decoding_rules_name_the_path(data, path, words):
    error = refuse(data)
    assert error.path == path, error.message
    assert words in error.problem, error.message


def test_bom_is_accepted_and_ignored():
    assert tf.parse_and_validate(b"\xef\xbb\xbf" + RAW).doc == tf.parse_and_validate(RAW).doc


def test_prompt_limit_is_configurable_up_to_ten():
    doc = with_path(FULL, [*M, "reflectionPrompts"], [f"Question {i}?" for i in range(8)])
    assert "--max-prompts" in refuse(doc).problem
    assert len(tf.parse_and_validate(encoded(doc), tf.Limits(max_prompts=8)).template["metadata"]["reflectionPrompts"]) == 8
    refuse(doc, tf.Limits(max_prompts=7))
    with pytest.raises(InvalidInputError, match="between 1 and 10"):
        tf.Limits(max_prompts=11)


def test_many_values_refused():
    doc = with_path(FULL, [*M, "free"], [[i, i, i, i, i] for i in range(999)] * 1 + [[0] * 999] * 20)
    error = refuse(doc)
    assert "more than 20000 values" in error.problem or "more than 1000 items" in error.problem


def test_error_source_prefix():
    with pytest.raises(tf.TemplateFormatError) as info:
        tf.parse_and_validate(encoded(with_path(FULL, [*T, "type"], "x")), source="lesson.json")
    assert info.value.message.startswith("lesson.json: template.type: expected one of")


def test_size_limit_checked_before_reading(tmp_path, monkeypatch):
    big = tmp_path / "big.json"
    with open(big, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MiB without writing them
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    with pytest.raises(tf.TemplateFormatError) as info:
        tf.read_limited(big)
    assert info.value.path == "file" and "52428800 bytes is larger than the 1 MiB limit" in info.value.message
    assert str(big) not in map(str, opened)
    just = tmp_path / "just.json"
    just.write_bytes(b" " * (1 << 20))
    assert len(tf.read_limited(just)) == 1 << 20
    just.write_bytes(b" " * ((1 << 20) + 1))
    with pytest.raises(tf.TemplateFormatError):
        tf.read_limited(just)


def test_read_limited_caps_streams(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child writes 3 MiB into the pipe
        try:
            with open(fifo, "wb") as handle:
                handle.write(b"x" * (3 << 20))
        except BrokenPipeError:
            pass
        os._exit(0)
    try:
        with pytest.raises(tf.TemplateFormatError, match="larger than the 1 MiB limit"):
            tf.read_limited(fifo)
    finally:
        os.waitpid(pid, 0)
    with pytest.raises(NotFoundError):
        tf.read_limited(tmp_path / "missing.json")
    with pytest.raises(InvalidInputError, match="folder"):
        tf.read_limited(tmp_path)


def test_encodings_are_canonical_and_deterministic():
    loaded = tf.parse_and_validate(RAW)
    assert tf.encode(loaded.doc) == RAW
    assert tf.canonical_bytes({"b": 1, "a": [1, {"é": "ü"}]}) == '{"a":[1,{"é":"ü"}],"b":1}'.encode()
    assert tf.signed_content({**loaded.doc, "signature": {"x": 1}}) == tf.canonical_bytes(loaded.content())
    shuffled = dict(reversed(list(loaded.doc.items())))
    assert tf.encode(shuffled) == RAW and tf.canonical_bytes(shuffled) == tf.canonical_bytes(loaded.doc)
