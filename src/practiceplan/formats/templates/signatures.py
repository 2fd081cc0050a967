"""Ed25519 signatures over the canonical JSON of a template file (the ``cryptography`` package).

* What is signed: :func:`practiceplan.formats.templates.format.signed_content` — the whole document without its
  ``signature`` member, as canonical JSON (keys sorted, no whitespace, UTF-8).
* The ``signature`` member is ``{"algorithm": "ed25519", "publicKey": <64 hex>, "value": <128 hex>}``.
  Nothing else is in it, so changing any byte of a signed file either breaks the JSON, changes the
  signed content, or changes the key or the signature value: all of which are refused.
* Keys: the private key is a PKCS #8 PEM file written with mode 0600 and never printed; the public key
  is shared as ``ed25519:<64 hex>`` (a ``.pub`` file holds that one line). A key's fingerprint is the
  first 16 hex digits of the SHA-256 of its 32 raw bytes.

``cryptography`` is imported inside the functions that need it, so ``--help`` and ``today`` never load it.
"""

from __future__ import annotations

import hashlib
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from practiceplan.errors import InvalidInputError, NotAuthorisedError, NotFoundError, storage_error
from practiceplan.fileio import write_atomic
from practiceplan.formats.templates.format import signed_content

ALGORITHM = "ed25519"
PUBLIC_PREFIX = "ed25519:"
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class KeyPair:
    public_hex: str
    private_path: Path
    public_path: Path

    @property
    def public_text(self) -> str:
        return PUBLIC_PREFIX + self.public_hex

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_hex)


def fingerprint(public_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]


def parse_public_key(text: str) -> str:
    """``ed25519:<hex>``, bare hex, or the path of a ``.pub`` file -> 64 lowercase hex digits."""
    value = text.strip()
    if not value.lower().startswith(PUBLIC_PREFIX) and not _HEX64.fullmatch(value.lower()):
        candidate = Path(value).expanduser()
        try:
            if candidate.is_file() and candidate.stat().st_size < 4096:
                value = candidate.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError, ValueError):
            pass
    if value.lower().startswith(PUBLIC_PREFIX):
        value = value[len(PUBLIC_PREFIX):]
    value = value.strip().lower()
    if not _HEX64.fullmatch(value):
        raise InvalidInputError(
            "not an Ed25519 public key",
            hint="give the key as printed by `practiceplan template keygen` (ed25519:<64 hex digits>) or its .pub file",
        )
    return value


def generate(private_path: Path, *, force: bool = False) -> KeyPair:
    """Create a key pair: ``private_path`` (PEM, mode 0600) and ``private_path.pub`` (public, one line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public_path = private_path.with_name(private_path.name + ".pub")
    for existing in (private_path, public_path):
        if existing.exists() or existing.is_symlink():
            if not force:
                raise InvalidInputError(
                    f"{existing} already exists; not overwriting a key",
                    hint="choose another --out, or pass --force to replace it (the old key is lost)",
                )
            existing.unlink()
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise InvalidInputError(f"cannot create {private_path.parent}: {exc.strerror}") from None
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_hex = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    try:
        write_atomic(private_path, pem, mode=0o600)
        try:
            write_atomic(public_path, (PUBLIC_PREFIX + public_hex + "\n").encode("utf-8"), mode=0o644)
        except BaseException:
            private_path.unlink(missing_ok=True)  # a pair or nothing
            raise
    except OSError as exc:
        raise storage_error(exc, private_path.parent) or InvalidInputError(
            f"cannot write the key: {exc.strerror}") from None
    return KeyPair(public_hex, private_path, public_path)


def load_private_key(path: Path) -> Any:
    """The Ed25519 private key in ``path``; refused if others can read the file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        info = path.stat()
        data = path.read_bytes() if info.st_size < 16384 else b""
    except FileNotFoundError:
        raise NotFoundError(f"no such key file: {path}") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read the key file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInputError(
            f"the key file {path} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o})",
            hint=f"chmod 600 {path}",
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidInputError(f"{path} is not an unencrypted Ed25519 private key (PEM)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInputError(f"{path} is not an Ed25519 private key")
    return key


def sign(document: dict[str, Any], private_key: Any) -> dict[str, Any]:
    """A copy of ``document`` with a fresh ``signature`` (any old one is replaced)."""
    from cryptography.hazmat.primitives import serialization

    content = {k: v for k, v in document.items() if k != "signature"}
    public_hex = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    value = private_key.sign(signed_content(content)).hex()
    return {**content, "signature": {"algorithm": ALGORITHM, "publicKey": public_hex, "value": value}}


def verify(document: dict[str, Any]) -> str:
    """Check the document's signature; returns the signer's public key (hex).

    Raises NotAuthorisedError (exit 77) when there is no signature or it does not match the content.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signature = document.get("signature")
    if not isinstance(signature, dict):
        raise NotAuthorisedError("the template is not signed")
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(signature["publicKey"]))
        public.verify(bytes.fromhex(signature["value"]), signed_content(document))
    except (InvalidSignature, ValueError, KeyError, TypeError):
        raise NotAuthorisedError(
            "the signature does not match the template: the file was changed after it was signed",
            hint="get a fresh copy from your tutor; do not edit signed files",
        ) from None
    return str(signature["publicKey"])
