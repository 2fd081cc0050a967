"""Defence in depth (reliability-plan §4.4): even if hostile text reached the database, no view emits it raw.

Import refuses control and bidi characters, so these tests feed the render functions directly.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from practiceplan.render import templates as views
from tests.formats.template_helpers import full_doc

NASTY = ["\x1b[2J\x1b[H", "\x1b]52;c;cm0gLXJm\x07", "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\", "\x9b31m", "\x9d0;t\x9c",
         "\u202e", "\u2066", "[link=https://evil.example]x[/link]", "[/Pattern]", "[bold red]FAKE[/]", "\x00", "\r", "\x07"]

hostile = st.builds(
    lambda a, b, c: a + b + c,
    st.text(max_size=8), st.sampled_from(NASTY) | st.text(alphabet="\x1b\x9b\x9d[]/\u202e", max_size=4), st.text(max_size=8),
)


def poisoned(text: str) -> dict:
    doc = full_doc()
    t = doc["template"]
    t["title"] = text
    t["description"] = text
    t["tags"] = [text]
    t["pieceRefs"] = [{"title": text, "composer": text}]
    t["metadata"]["instrument"] = text
    t["metadata"]["level"] = text
    t["metadata"]["segments"][0]["label"] = text
    t["metadata"]["segments"][0]["instructions"] = text
    t["metadata"]["reflectionPrompts"] = [text]
    t["metadata"]["targets"] = {"tempo": text}
    for param in doc["parameters"]:
        param["label"] = text
    doc["parameters"][4]["choices"] = [text]
    return doc


def render_all(text: str) -> None:
    from zoneinfo import ZoneInfo

    doc = poisoned(text)
    template = doc["template"]
    info = {"template": template, "status": "imported", "versions": [{"version": 1, "publishedAt": text}],
            "latestVersion": 1, "unpublishedChanges": False, "adoptions": 2, "signedBy": text, "allowUnsigned": False}
    views.print_templates([info], {template["id"]: text})
    views.print_gallery([info], {})
    views.print_template(info, doc["parameters"], text, ZoneInfo("Europe/Berlin"))
    views.print_lint({"title": text, "templateId": text, "templateVersion": 1, "segments": 1, "parameters": 1,
                      "signature": {"present": True, "valid": True, "fingerprint": text, "trustedAs": text},
                      "warnings": [text]})
    plan = {"title": text, "schedule": {"timeOfDay": "18:00"}, "metadata": template["metadata"]}
    session = {"scheduledStart": "2026-03-02T17:00:00.000Z", "scheduledEnd": "2026-03-02T17:30:00.000Z"}

    views.print_preview({"template": template, "plan": plan, "sessions": [session], "from": "2026-03-02", "to": "2026-03-08",
                         "firstDay": "2026-03-02", "weeks": 1, "timezone": text, "parameters": {text: text},
                         "signature": {"present": False}}, ZoneInfo("Europe/Berlin"), 0)
    views.print_upgrade([{"path": text, "mine": text, "theirs": [text], "outcome": "clash", "choice": None, "base": None,
                          "result": text}], text)
    views.print_trusted([{"name": text, "fingerprint": text, "addedAt": text, "publicKey": text}])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile)
def test_no_raw_controls_without_a_terminal(capsys, text):
    render_all(text)
    out = capsys.readouterr().out
    for char in ("\x1b", "\x07", "\x9b", "\x9d", "\u202e", "\u2066", "\x00"):
        assert char not in out


SGR = re.compile(r"\x1b\[[0-9;]*m")


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile)
def test_only_colour_sequences_on_a_terminal(monkeypatch, capsys, text):
    monkeypatch.setattr("practiceplan.render.output.color_enabled", lambda stream=None: True)
    render_all(text)
    out = capsys.readouterr().out
    assert "\x1b" in out  # colour is on
    assert "\x1b" not in SGR.sub("", out)  # and every ESC starts an SGR (colour) sequence: no OSC, no cursor moves
    for char in ("\x07", "\x9b", "\x9d", "\u202e"):
        assert char not in out


@pytest.mark.parametrize("text", NASTY)
def test_error_messages_are_made_visible(cli, tmp_path, text):
    result = cli("template", "show", f"x{text}", ok=False)
    assert result.code == 3
    for char in ("\x1b", "\x07", "\x9b", "\x9d", "\u202e", "\u2066", "\x00"):
        assert char not in result.stderr
