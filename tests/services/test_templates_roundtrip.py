"""Round trips: export -> import -> export is byte-identical (canonical JSON, and the file bytes too)."""

from __future__ import annotations

import itertools
import json

from hypothesis import HealthCheck, given, settings

from practiceplan.services.session import Session
from practiceplan.settings import Settings
from practiceplan.services.templates import Templates
from practiceplan.formats.templates import format as tf
from tests import wire
from tests.formats.template_helpers import full_doc, template_docs, write

_homes = itertools.count()


def service(root) -> Templates:
    home = root / f"home{next(_homes)}"
    env = {"PRACTICEPLAN_HOME": str(home), "PRACTICEPLAN_TZ": "Europe/Berlin", "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z"}
    return Templates(Session(Settings(env=env)))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=template_docs())
def test_generated_templates_round_trip(tmp_path_factory, doc):
    data = tf.encode(doc)
    first = service(tmp_path_factory.getbasetemp())
    try:
        result = first.import_bytes(data, "x.json", allow_unsigned=True)
        assert result.outcome == "imported"
        exported, document, _ = first.export(result.template["id"])
        assert exported == data
        assert tf.canonical_bytes(json.loads(exported)) == tf.canonical_bytes(doc)
        stored = first.store.get("plan_template", doc["template"]["id"])
        wire.check_template(stored)
    finally:
        first.s.close()
    second = service(tmp_path_factory.getbasetemp())
    try:
        second.import_bytes(exported, "y.json", allow_unsigned=True)
        assert second.export(doc["template"]["id"])[0] == data
    finally:
        second.s.close()


def test_tutor_to_learner_to_file_is_byte_identical(cli, tmp_path, monkeypatch):
    tutor, learner = tmp_path / "tutor", tmp_path / "learner"
    monkeypatch.setenv("PRACTICEPLAN_HOME", str(tutor))
    plan = cli("plan", "add", "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "18:00", "--segment", "Warm-up:10",
               "--segment", "Scales:20:slowly", "--prompt", "What went well?", "--target", "tempo=92",
               "--instrument", "piano", "--json").json["plan"]
    template = cli("template", "create", "--from-plan", plan["id"], "--title", "Scales for {{who}}", "--level", "beginner",
                   "--param-spec", "who:text:title:you", "--json").json["template"]
    cli("template", "publish", template["id"])
    key = cli("template", "keygen", "--json").json
    exported = tmp_path / "scales.json"
    cli("template", "export", template["id"], "-o", str(exported))
    cli("template", "sign", str(exported), "--key", key["privateKeyPath"])
    signed = exported.read_bytes()

    monkeypatch.setenv("PRACTICEPLAN_HOME", str(learner))
    cli("template", "trust", "add", key["publicKey"], "--name", "Tutor")
    cli("template", "import", str(exported))
    again = tmp_path / "again.json"
    cli("template", "export", template["id"][9:17], "-o", str(again))
    assert again.read_bytes() == signed  # byte-identical, signature included
    assert tf.canonical_bytes(json.loads(again.read_bytes())) == tf.canonical_bytes(json.loads(signed))
    assert cli("template", "export", template["id"]).stdout.encode() == signed  # stdout too


def test_every_template_entity_is_wire_valid(cli, tmp_path):
    path = write(tmp_path / "t.json", full_doc())
    imported = cli("template", "import", str(path), "--allow-unsigned", "--json").json["template"]
    wire.check_template(imported)
    assert "sourcePlanId" not in imported and imported["visibility"] in ("public", "private")
