"""Ed25519 signatures, keys, trust: tampering and untrusted keys are refused with exit 77."""

from __future__ import annotations

import copy
import json
import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from practiceplan.errors import NotAuthorisedError
from practiceplan.formats.templates import format as tf
from practiceplan.formats.templates import signatures
from tests.formats.template_helpers import full_doc, logical_dump, write


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    return signatures.generate(folder / "a.key"), signatures.generate(folder / "b.key")


@pytest.fixture(scope="module")
def signed(keys):
    return tf.encode(signatures.sign(full_doc(), signatures.load_private_key(keys[0].private_path)))


def accepted_by(data: bytes, public_hex: str) -> bool:
    """What import does: parse, validate, verify; True only if it verifies with the given key."""
    try:
        loaded = tf.parse_and_validate(data)
        return signatures.verify(loaded.doc) == public_hex
    except (tf.TemplateFormatError, NotAuthorisedError):
        return False


def test_sign_and_verify(keys, signed):
    loaded = tf.parse_and_validate(signed)
    assert set(loaded.signature) == {"algorithm", "publicKey", "value"}
    assert loaded.signature["publicKey"] == keys[0].public_hex
    assert signatures.verify(loaded.doc) == keys[0].public_hex
    # re-signing replaces the signature; the content is unchanged
    again = signatures.sign(loaded.doc, signatures.load_private_key(keys[1].private_path))
    assert again["signature"]["publicKey"] == keys[1].public_hex and tf.signed_content(again) == tf.signed_content(loaded.doc)


def test_every_one_byte_change_invalidates(keys, signed):
    """Flip the lowest bit of each byte in turn: no variant verifies."""
    public = keys[0].public_hex
    assert accepted_by(signed, public)
    for index in range(len(signed)):
        mutated = bytearray(signed)
        mutated[index] ^= 0x01
        assert not accepted_by(bytes(mutated), public), index


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_any_byte_replacement_is_refused_unless_only_formatting_changed(keys, signed, data):
    index = data.draw(st.integers(0, len(signed) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != signed[index]))
    mutated = bytearray(signed)
    mutated[index] = byte
    if accepted_by(bytes(mutated), keys[0].public_hex):
        # only insignificant whitespace may change: the signed content and the signature are identical
        original, changed = json.loads(signed), json.loads(bytes(mutated))
        assert tf.canonical_bytes(changed) == tf.canonical_bytes(original)


def test_wrong_key_and_swapped_key(keys, signed):
    loaded = tf.parse_and_validate(signed)
    swapped = copy.deepcopy(loaded.doc)
    swapped["signature"]["publicKey"] = keys[1].public_hex  # claims B, value made by A
    with pytest.raises(NotAuthorisedError, match="changed after it was signed"):
        signatures.verify(swapped)
    by_b = signatures.sign(loaded.doc, signatures.load_private_key(keys[1].private_path))
    assert signatures.verify(by_b) == keys[1].public_hex != keys[0].public_hex


def test_private_key_file_is_private_and_checked(tmp_path):
    pair = signatures.generate(tmp_path / "k" / "tutor.key")
    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(pair.private_path.parent.stat().st_mode) == 0o700
    assert pair.public_path.read_text() == f"ed25519:{pair.public_hex}\n"
    assert signatures.parse_public_key(str(pair.public_path)) == pair.public_hex
    assert signatures.parse_public_key(pair.public_text.upper().replace("ED25519", "ed25519")) == pair.public_hex
    os.chmod(pair.private_path, 0o644)
    with pytest.raises(Exception, match="can be read by other users") as info:
        signatures.load_private_key(pair.private_path)
    assert "chmod 600" in info.value.hint
    with pytest.raises(Exception, match="already exists"):
        signatures.generate(pair.private_path)


# --------------------------------------------------------------------------- through the CLI


def keygen(cli, home, name="tutor"):
    result = cli("template", "keygen", "--name", name, "--json")
    return result.json, result


def test_keygen_never_prints_the_private_key(cli, isolated_home):
    info, result = keygen(cli, isolated_home)
    private = (isolated_home / "keys" / "tutor.key").read_text()
    body = "".join(private.splitlines()[1:-1])
    assert "PRIVATE" not in result.stdout + result.stderr and body not in result.stdout + result.stderr
    assert set(info) == {"publicKey", "fingerprint", "privateKeyPath", "publicKeyPath"}
    assert info["privateKeyPath"] == str(isolated_home / "keys" / "tutor.key")
    assert stat.S_IMODE(os.stat(info["privateKeyPath"]).st_mode) == 0o600
    text = cli("template", "keygen", "--name", "other").stdout
    assert "PRIVATE" not in text and "ed25519:" in text
    again = cli("template", "keygen", "--name", "tutor", ok=False)
    assert again.code == 65 and "already exists" in again.stderr
    assert (isolated_home / "keys" / "tutor.key").read_text() == private


@pytest.fixture
def tutor_file(cli, isolated_home, tmp_path):
    info, _ = keygen(cli, isolated_home)
    path = write(tmp_path / "lesson.json", full_doc())
    signed = cli("template", "sign", str(path), "--key", info["privateKeyPath"], "--json").json
    assert signed == {"path": str(path), "fingerprint": info["fingerprint"]}
    return path, info


def test_unsigned_is_refused_with_a_reason_and_a_hint(cli, isolated_home, tmp_path):
    cli("plan", "list")
    before = logical_dump(isolated_home / "practiceplan.db")
    path = write(tmp_path / "unsigned.json", full_doc())
    result = cli("template", "import", str(path), ok=False)
    assert result.code == 77
    lines = result.stderr.splitlines()
    assert lines[0] == f"practiceplan: error: {path} is not signed, so it is not an approved template"
    assert lines[1].startswith("hint:") and "--allow-unsigned" in lines[1]
    assert logical_dump(isolated_home / "practiceplan.db") == before


def test_allow_unsigned_is_recorded(cli, tmp_path):
    path = write(tmp_path / "mine.json", full_doc())
    result = cli("template", "import", str(path), "--allow-unsigned", "--json").json
    assert result["allowUnsigned"] is True and result["signedBy"] is None and result["outcome"] == "imported"
    provenance = result["template"]["metadata"]["provenance"]
    assert provenance["allowUnsigned"] is True and provenance["signed"] is False and provenance["kind"] == "import"
    shown = cli("template", "show", "fulltemp", "--json").json
    assert shown["allowUnsigned"] is True and shown["status"] == "imported"
    assert "imported with --allow-unsigned" in cli("template", "show", "fulltemp").stdout


def test_untrusted_then_trusted(cli, isolated_home, tutor_file):
    path, info = tutor_file
    result = cli("template", "import", str(path), ok=False)
    assert result.code == 77
    assert f"signed by a key you do not trust (key {info['fingerprint']})" in result.stderr  # one key format (issue 10)
    assert f"practiceplan template trust add {info['publicKey']} --name NAME" in result.stderr
    cli("template", "trust", "add", info["publicKey"], "--name", "Ms Lee")
    imported = cli("template", "import", str(path), "--json").json
    assert imported["signedBy"]["name"] == "Ms Lee" and imported["signedBy"]["fingerprint"] == info["fingerprint"]
    assert imported["template"]["metadata"]["provenance"]["signer"] == {"name": "Ms Lee", "fingerprint": info["fingerprint"]}
    assert cli("template", "import", str(path), "--json").json["outcome"] == "unchanged"


def test_tampered_file_is_refused(cli, isolated_home, tutor_file):
    path, info = tutor_file
    cli("template", "trust", "add", info["publicKey"], "--name", "Ms Lee")
    doc = json.loads(path.read_bytes())
    doc["template"]["metadata"]["segments"][0]["durationMinutes"] = 11  # a "small" edit, signature kept
    write(path, doc)
    before = logical_dump(isolated_home / "practiceplan.db")
    result = cli("template", "import", str(path), ok=False)
    assert result.code == 77 and "changed after it was signed" in result.stderr
    assert result.stderr.startswith(f"practiceplan: error: {path}: the signature does not match")
    result = cli("template", "import", str(path), "--allow-unsigned", ok=False)
    assert result.code == 77  # a broken signature is never waved through
    assert logical_dump(isolated_home / "practiceplan.db") == before


def test_wrong_key_is_refused(cli, isolated_home, tmp_path, tutor_file):
    path, info = tutor_file
    other, _ = keygen(cli, isolated_home, "intruder")
    cli("template", "trust", "add", other["publicKey"], "--name", "Someone else")
    result = cli("template", "import", str(path), ok=False)
    assert result.code == 77 and "do not trust" in result.stderr


def test_a_new_version_must_come_from_the_same_key(cli, isolated_home, tmp_path, tutor_file):
    path, info = tutor_file
    cli("template", "trust", "add", info["publicKey"], "--name", "Ms Lee")
    cli("template", "import", str(path))
    other, _ = keygen(cli, isolated_home, "other")
    cli("template", "trust", "add", other["publicKey"], "--name", "Other tutor")
    doc = json.loads(path.read_bytes())
    doc.pop("signature")
    doc["template"]["templateVersion"] = 2
    v2 = write(tmp_path / "v2.json", doc)
    cli("template", "sign", str(v2), "--key", other["privateKeyPath"])
    result = cli("template", "import", str(v2), ok=False)
    assert result.code == 77 and "was signed by 'Ms Lee'" in result.stderr
    unsigned = write(tmp_path / "v2u.json", doc)
    assert cli("template", "import", str(unsigned), "--allow-unsigned", ok=False).code == 77


def test_sign_refuses_invalid_files_and_open_keys(cli, isolated_home, tmp_path):
    info, _ = keygen(cli, isolated_home)
    bad = full_doc()
    bad["template"]["title"] = ""
    path = write(tmp_path / "bad.json", bad)
    result = cli("template", "sign", str(path), "--key", info["privateKeyPath"], ok=False)
    assert result.code == 65 and "template.title: must not be empty" in result.stderr
    good = write(tmp_path / "good.json", full_doc())
    os.chmod(info["privateKeyPath"], 0o640)
    result = cli("template", "sign", str(good), "--key", info["privateKeyPath"], ok=False)
    assert result.code == 65 and "chmod 600" in result.stderr and "PRIVATE" not in result.stderr
    assert "signature" not in json.loads(good.read_bytes())


def test_sign_to_another_file(cli, isolated_home, tmp_path):
    info, _ = keygen(cli, isolated_home)
    source = write(tmp_path / "lesson.json", full_doc())
    before = source.read_bytes()
    out = tmp_path / "lesson.signed.json"
    text = cli("template", "sign", str(source), "--key", info["privateKeyPath"], "-o", str(out)).stdout
    assert f"Signed {out} with key {info['fingerprint']}" in text
    assert source.read_bytes() == before and json.loads(out.read_bytes())["signature"]["publicKey"] in info["publicKey"]


def test_trust_add_list_remove(cli, isolated_home, tmp_path):
    info, _ = keygen(cli, isolated_home)
    assert cli("template", "trust", "list", "--json").json == {"keys": []}
    assert "No trusted tutor keys" in cli("template", "trust", "list").stdout
    added = cli("template", "trust", "add", info["publicKeyPath"], "--name", "Ms Lee", "--json").json["key"]
    assert added["fingerprint"] == info["fingerprint"] and added["publicKey"] == info["publicKey"][len("ed25519:"):]
    listed = cli("template", "trust", "list", "--json").json["keys"]
    assert [k["name"] for k in listed] == ["Ms Lee"]
    assert "Ms Lee" in cli("template", "trust", "list").stdout
    assert cli("template", "trust", "add", info["publicKey"], "--name", "Again", ok=False).code == 65
    assert cli("template", "trust", "add", "ed25519:xyz", "--name", "Bad", ok=False).code == 65
    assert cli("template", "trust", "add", info["publicKey"], "--name", "Evil\x1b[2J", ok=False).code == 65
    assert cli("template", "trust", "remove", "nobody", ok=False).code == 3
    removed = cli("template", "trust", "remove", info["fingerprint"][:8], "--json").json["key"]
    assert removed["name"] == "Ms Lee"
    assert cli("template", "trust", "list", "--json").json == {"keys": []}


def test_untrusting_stops_new_imports(cli, tutor_file):
    path, info = tutor_file
    cli("template", "trust", "add", info["publicKey"], "--name", "Ms Lee")
    cli("template", "trust", "remove", "Ms Lee")
    assert cli("template", "import", str(path), ok=False).code == 77


def test_allow_unsigned_also_takes_an_untrusted_signature_but_records_it_as_unsigned(cli, tutor_file):
    path, info = tutor_file
    result = cli("template", "import", str(path), "--allow-unsigned", "--json").json
    assert result["allowUnsigned"] is True and result["signedBy"] is None
    assert result["template"]["metadata"]["provenance"]["signed"] is False


# --------------------------------------------------------------------------- issue 10: the tutor flow


def test_sign_uses_the_key_keygen_wrote(cli, isolated_home, tmp_path):
    path = write(tmp_path / "lesson.json", full_doc())
    missing = cli("template", "sign", str(path), ok=False)
    assert missing.code == 3 and "template keygen" in missing.stderr
    info, _ = keygen(cli, isolated_home)
    signed = cli("template", "sign", str(path), "--json").json
    assert signed == {"path": str(path), "fingerprint": info["fingerprint"]}
    other, _ = keygen(cli, isolated_home, "lessons")  # a second key: the default is still tutor.key
    assert cli("template", "sign", str(path), "--json").json["fingerprint"] == info["fingerprint"] != other["fingerprint"]


def test_export_signs_in_one_step(cli, isolated_home, tmp_path):
    info, _ = keygen(cli, isolated_home)
    cli("plan", "add", "Scales", "--every", "weekly", "--on", "mo,we,fr", "--at", "07:30")
    template = cli("template", "create", "--from-plan", "Scales", "--json").json["template"]
    cli("template", "publish", template["id"])
    target = tmp_path / "scales.json"
    text = cli("template", "export", template["id"], "--sign", "-o", str(target)).stdout
    assert f"signed with key {info['fingerprint']}" in text
    cli("template", "trust", "add", info["publicKey"], "--name", "Ms Lee")
    assert cli("template", "lint", str(target), "--json").json["signature"]["valid"] is True
    assert cli("template", "export", template["id"], "--key", "x", ok=False).code == 2


def test_one_key_format_everywhere_and_the_tutor_is_named(cli, isolated_home, tutor_file):
    path, info = tutor_file
    key = f"key {info['fingerprint']}"
    spare = cli("template", "keygen", "--name", "spare").stdout
    spare_pub = (isolated_home / "keys" / "spare.key.pub").read_text().strip()
    assert spare.startswith(f"Created key {signatures.fingerprint(spare_pub[len('ed25519:'):])} ")
    assert "fingerprint" not in spare and spare_pub in spare
    assert key in cli("template", "lint", str(path)).stdout
    untrusted = cli("template", "preview", str(path), "--param", "piece=Etude").stdout
    assert f"signed by {key}, which you do not trust" in untrusted
    cli("template", "trust", "add", info["publicKey"], "--name", "Ms Lee")
    assert f"signed by Ms Lee ({key})" in cli("template", "lint", str(path)).stdout
    assert f"signed by Ms Lee ({key})" in cli("template", "preview", str(path), "--param", "piece=Etude").stdout
    assert f"signed by Ms Lee ({key})" in cli("template", "import", str(path)).stdout
    assert f"Ms Lee ({key})" in cli("template", "trust", "remove", "Ms Lee").stdout
