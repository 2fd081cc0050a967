"""The published JSON Schema and docs agree with the validator."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from practiceplan.domain import templates as dt
from practiceplan.formats.templates import format as tf
from practiceplan.formats.templates.schema import build_schema, schema_text
from tests.formats.template_helpers import encoded, full_doc, minimal_doc, template_docs
from tests.formats.test_hostile_templates import CORPUS, generated_mutations

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = jsonschema.Draft202012Validator(build_schema())


def test_published_schema_file_is_current():
    assert (ROOT / "docs" / "template.schema.json").read_text(encoding="utf-8") == schema_text(), (
        "docs/template.schema.json is stale: run `python -m practiceplan.formats.templates.schema > docs/template.schema.json`"
    )
    jsonschema.Draft202012Validator.check_schema(build_schema())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(template_docs())
def test_everything_we_accept_matches_the_schema(doc):
    loaded = tf.parse_and_validate(encoded(doc))
    VALIDATOR.validate(loaded.doc)


def test_schema_and_validator_on_mutations():
    """Accepted by us => valid for the schema; invalid for the schema => refused by us."""
    checked = 0
    for data in [*generated_mutations(800, seed=5), *CORPUS.values(), encoded(full_doc()), encoded(minimal_doc())]:
        try:
            document = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            continue
        try:
            loaded = tf.parse_and_validate(data)
        except tf.TemplateFormatError:
            loaded = None
        schema_ok = VALIDATOR.is_valid(document)
        if loaded is not None:
            assert schema_ok, list(VALIDATOR.iter_errors(document))[0].message
        checked += 1
    assert checked > 500


def test_docs_describe_every_type_target_and_limit():
    text = (ROOT / "docs" / "template-format.md").read_text(encoding="utf-8")
    for name in (*dt.PARAM_TYPES, *dt.TEXT_TARGETS, *dt.VALUE_TARGETS, "segments[N].pieceRefs", "targets.NAME"):
        assert f"`{name}`" in text, name
    for fact in ("1 MiB", "at most **10** per session", "at most **5** by default", "16 levels", "exit 77", "exit 65",
                 "--allow-unsigned", "--max-prompts", "canonical JSON"):
        assert fact in text, fact


def test_docs_example_is_a_valid_template():
    text = (ROOT / "docs" / "template-format.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)\n```", text, re.S).group(1)
    document = json.loads(block)
    document.pop("signature")
    loaded = tf.parse_and_validate(tf.encode(document))
    assert loaded.template["title"] == "Learn {{piece}}"


@pytest.mark.parametrize("kind", dt.PARAM_TYPES)
def test_every_parameter_type_is_in_the_schema(kind):
    assert kind in build_schema()["$defs"]["parameter"]["properties"]["type"]["enum"]
