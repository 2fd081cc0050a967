"""Template operations: one method per user action, each write one ``BEGIN IMMEDIATE`` transaction.

Like :mod:`practiceplan.services.session`: the CLI parses options, calls one of these and renders the result.
Everything a command needs is read and validated *before* its write transaction opens (a bad file,
signature or parameter leaves the database byte-identical), and every entity change writes its outbox
row in the same transaction (``Store.save``). Telemetry goes to the local ``events`` table with ids and
numbers only.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from practiceplan.domain import templates as dt
from practiceplan.domain.models import (
    clean_line,
    iso_z,
    new_id,
    parse_local_date,
    plan_zone_name,
)
from practiceplan.domain.template_merge import Change, Merge
from practiceplan.errors import InvalidInputError, NotAuthorisedError, NotFoundError
from practiceplan.fileio import OutputTarget, write_output
from practiceplan.formats.templates import format as tf
from practiceplan.store import templates as st

if TYPE_CHECKING:
    from practiceplan.domain.occurrences import SessionChanges
    from practiceplan.services.session import Session

_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")

# ask(param, previous_error) -> the text the learner typed for a missing required parameter
AskParam = Callable[[dict[str, Any], str | None], str]
# decide(clash) -> "mine" or "theirs"
DecideClash = Callable[[Change], str]


@dataclass
class TemplateOptions:
    """Template-level options of ``template create`` / ``template edit``."""

    title: str | None = None
    description: str | None = None
    kind: str | None = None
    visibility: str | None = None
    tags: list[str] | None = None
    level: str | None = None
    param_specs: list[str] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    drop_params: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    template: dict[str, Any]
    outcome: str  # imported | updated | unchanged | stored-older
    version: int
    signer: dict[str, str] | None
    allow_unsigned: bool


@dataclass
class UpgradeResult:
    plan: dict[str, Any]
    template_id: str
    from_version: int
    to_version: int
    merge: Merge
    applied: bool = False
    occurrences_changed: int = 0
    sessions: dict[str, int] = field(default_factory=lambda: {"added": 0, "moved": 0, "removed": 0, "updated": 0})
    has_base: bool = True


def adoption_start(plan: dict[str, Any]) -> date | None:
    """The first day the learner chose when adopting (or, failing that, the plan's start date)."""
    adoption = (plan.get("metadata") or {}).get("adoption") or {}
    return parse_local_date(adoption.get("start")) or parse_local_date((plan.get("schedule") or {}).get("startDate"))


def is_required(param: dict[str, Any]) -> bool:
    return bool(param.get("required", "default" not in param))


class Templates:
    def __init__(self, session: Session) -> None:
        self.s = session

    @property
    def store(self) -> Any:
        return self.s.store

    @property
    def now(self) -> datetime:
        return self.s.now

    @property
    def zone(self) -> Any:
        return self.s.zone

    @property
    def stamp(self) -> str:
        return iso_z(self.now)

    def _event(self, name: str, **data: int | str | None) -> None:
        self.s.add_event(name, {k: v for k, v in data.items() if v is not None})

    # ------------------------------------------------------------------ reading

    def resolve(self, ref: str) -> dict[str, Any]:
        return self.store.resolve("plan_template", ref)

    def info(self, entity: dict[str, Any], counts: dict[str, int] | None = None) -> dict[str, Any]:
        """Computed facts about a stored template (for list, show, gallery)."""
        rows = st.versions(self.store, entity["id"])
        status = dt.template_status(entity)
        unpublished = False
        if status == "published" and rows:
            latest = rows[-1]["document"]
            unpublished = dt.content_key(entity, dt.entity_parameters(entity)) != dt.content_key(
                latest["template"], latest.get("parameters") or []
            )
        elif status == "draft":
            unpublished = True
        provenance = (entity.get("metadata") or {}).get("provenance") or {}
        counts = counts if counts is not None else st.adoption_counts(self.store)
        return {
            "template": entity,
            "status": status,
            "versions": [{"version": r["version"], "publishedAt": r["publishedAt"]} for r in rows],
            "latestVersion": rows[-1]["version"] if rows else None,
            "unpublishedChanges": unpublished,
            "adoptions": counts.get(entity["id"], 0),
            "signedBy": (provenance.get("signer") or {}).get("name"),
            "allowUnsigned": bool(provenance.get("allowUnsigned")),
        }

    def listing(self, include_imported: bool = True) -> list[dict[str, Any]]:
        statuses = None if include_imported else ("draft", "published")
        entities = st.templates(self.store, statuses=statuses)
        counts = st.adoption_counts(self.store)
        items = [self.info(e, counts) for e in entities]
        items.sort(key=lambda i: ((i["template"].get("title") or "").lower(), i["template"]["id"]))
        return items

    def show(self, ref: str, version: int | None = None) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """`template show`: the template, its listing info (with that version's content) and its parameters."""
        entity = self.resolve(ref)
        info = self.info(entity)
        parameters = dt.entity_parameters(entity)
        if version is not None:
            document = self.version_document(entity, version)
            info = {**info, "template": document["template"]}
            parameters = document.get("parameters") or []
        return entity, info, parameters

    def version_document(self, entity: dict[str, Any], number: int | None) -> dict[str, Any]:
        """The file document of version ``number`` (latest when None)."""
        if number is None:
            latest = st.latest_version(self.store, entity["id"])
            if latest is None:
                raise InvalidInputError(
                    f"template '{entity.get('title')}' has no published version yet",
                    hint=f"publish it first: practiceplan template publish {self.store.short_id('plan_template', entity['id'])}",
                )
            return latest[1]
        document = st.version(self.store, entity["id"], number)
        if document is None:
            known = [str(r["version"]) for r in st.versions(self.store, entity["id"])]
            raise NotFoundError(
                f"template '{entity.get('title')}' has no version {number}",
                hint=f"stored versions: {', '.join(known) or 'none'}",
            )
        return document

    # ------------------------------------------------------------------ tutor side

    def _parameters(self, current: list[dict[str, Any]], options: TemplateOptions) -> list[dict[str, Any]]:
        params = [p for p in copy.deepcopy(current) if p["name"] not in options.drop_params]
        unknown = [n for n in options.drop_params if n not in {p["name"] for p in current}]
        if unknown:
            raise InvalidInputError(f"--drop-param {unknown[0]}: the template has no such parameter",
                                    hint="see its parameters with `practiceplan template show ID`")
        choices: dict[str, list[str]] = {}
        for text in options.choices:
            name, sep, values = text.partition("=")
            items = [clean_line(v, f"--choices {name.strip()}", max_len=tf.MAX_SHORT) for v in values.split(",") if v.strip()]
            if not sep or not items:
                raise InvalidInputError(f"--choices '{text}' must look like NAME=a,b,c",
                                        hint="e.g. --choices days=mo,we,fr")
            choices[name.strip()] = items
        for spec in options.param_specs:
            parts = spec.split(":", 3)
            if len(parts) < 3:
                raise InvalidInputError(
                    f"--param-spec '{spec}' must look like NAME:TYPE:TARGET[,TARGET...][:DEFAULT]",
                    hint="e.g. --param-spec 'piece:pieces:pieceRefs,title' or --param-spec 'at:time:schedule.timeOfDay:18:00'",
                )
            name, kind, targets = parts[0].strip(), parts[1].strip(), [t.strip() for t in parts[2].split(",") if t.strip()]
            param: dict[str, Any] = {"name": name, "type": kind, "targets": targets}
            if name in choices:
                param["choices"] = choices.pop(name)
            if len(parts) == 4 and parts[3].strip():
                if kind not in dt.PARAM_TYPES:
                    raise InvalidInputError(f"--param-spec {name}: unknown type '{kind}' (one of {', '.join(dt.PARAM_TYPES)})")
                value = parts[3].strip()
                if kind == "date":
                    value = self._iso_date(value, f"--param-spec {name}")
                try:
                    param["default"] = dt.parse_text_value(param, value)
                except ValueError as exc:
                    raise InvalidInputError(f"--param-spec {name}: default: {exc}",
                                            hint="the default must be a value of the parameter's type") from None
            params = [p for p in params if p["name"] != name] + [param]
        for name, values in choices.items():
            target = next((p for p in params if p["name"] == name), None)
            if target is None:
                raise InvalidInputError(f"--choices {name}: the template has no such parameter",
                                        hint="add it first with --param-spec")
            target["choices"] = values
        return params

    def _finish(self, entity: dict[str, Any], params: list[dict[str, Any]], limits: tf.Limits) -> dict[str, Any]:
        """Validate as an import would, then return the entity to store (parameters in metadata)."""
        tf.validate_document(tf.make_document(dt.public_entity(entity), params), limits)
        stored = copy.deepcopy(entity)
        stored.setdefault("metadata", {})["parameters"] = params
        return stored

    def create(
        self, *, plan_ref: str | None, inp: Any, options: TemplateOptions, limits: tf.Limits = tf.Limits()
    ) -> dict[str, Any]:
        """A new draft template from one of your plans (``plan_ref``) and/or plan-style options (``inp``)."""
        from practiceplan.domain.plans import apply_input

        if plan_ref:
            plan = self.store.resolve("practice_plan", plan_ref)
            if inp is not None and _input_given(inp):
                plan = apply_input(plan, inp, now=self.now, default_zone=self.zone.key)
        else:
            if inp is None:
                raise InvalidInputError("give --from-plan PLAN or a schedule (--every, --rrule or --once)",
                                        hint="e.g. --every weekly --on mo,we,fr --at 18:00")
            plan = apply_input(None, inp, now=self.now, default_zone=self.zone.key)
        entity = dt.plan_to_template(
            plan, template_id=new_id("template"), now=self.now, title=options.title, description=options.description,
            kind=options.kind, visibility=options.visibility, tags=options.tags, level=options.level,
        )
        stored = self._finish(entity, self._parameters([], options), limits)
        with self.store.write():
            self.store.save("plan_template", stored, self.stamp)
            self._event(
                "template.create", templateId=stored["id"], planId=plan.get("id") if plan_ref else None,
                segments=len(stored["metadata"].get("segments") or []), parameters=len(stored["metadata"]["parameters"]),
            )
        return stored

    def edit(
        self, ref: str, *, inp: Any, options: TemplateOptions, from_file: str | None = None,
        limits: tf.Limits = tf.Limits(),
    ) -> dict[str, Any]:
        """Change a template of yours (imported ones are read-only: they belong to their tutor)."""
        from practiceplan.domain.plans import apply_input

        entity = self.resolve(ref)
        if dt.template_status(entity) == "imported":
            raise InvalidInputError(
                "imported templates are read-only (they are signed by their tutor)",
                hint="adopt it and change your plan, or export it, change the file and import it as your own with a new id",
            )
        params = dt.entity_parameters(entity)
        if from_file:
            loaded = tf.parse_and_validate(tf.read_limited(from_file, limits.max_bytes), limits, from_file)
            if loaded.template_id != entity["id"]:
                raise InvalidInputError(f"{from_file}: template.id: holds template '{loaded.template_id}', not '{entity['id']}'")
            new = copy.deepcopy(loaded.template)
            for key in ("authorId", "createdAt", "templateVersion", "publishedAt"):
                if key in entity:
                    new[key] = entity[key]
                else:
                    new.pop(key, None)
            new["updatedAt"] = self.stamp
            params = copy.deepcopy(loaded.parameters)
            base = new
        else:
            base = entity
        shape = dt.template_as_plan(base)
        if inp is not None and _input_given(inp):
            shape = apply_input(shape, inp, now=self.now, default_zone=self.zone.key)
        new_entity = dt.plan_to_template(
            shape, template_id=entity["id"], now=self.now, base=base, title=options.title,
            description=options.description, kind=options.kind, visibility=options.visibility, tags=options.tags,
            level=options.level,
        )
        stored = self._finish(new_entity, self._parameters(params, options), limits)
        with self.store.write():
            self.store.save("plan_template", stored, self.stamp)
            self._event("template.update", templateId=stored["id"], parameters=len(stored["metadata"]["parameters"]))
        return stored

    def publish(self, ref: str, visibility: str | None = None) -> tuple[dict[str, Any], int]:
        """Record the current content as the next version (bumps ``templateVersion``, sets ``publishedAt``)."""
        entity = self.resolve(ref)
        if dt.template_status(entity) == "imported":
            raise InvalidInputError("only your own templates can be published; this one was imported",
                                    hint="adopt it (`practiceplan template adopt ID`), or make your own from a plan")
        params = dt.entity_parameters(entity)
        candidate = copy.deepcopy(entity)
        if visibility:
            candidate["visibility"] = visibility
        latest = st.latest_version(self.store, entity["id"])
        if latest and dt.content_key(candidate, params) == dt.content_key(latest[1]["template"], latest[1].get("parameters") or []):
            raise InvalidInputError(
                f"nothing changed since version {latest[0]}", hint="edit the template first (practiceplan template edit)"
            )
        number = (latest[0] if latest else 0) + 1
        candidate.update(templateVersion=number, publishedAt=self.stamp, updatedAt=self.stamp)
        document = tf.make_document(dt.public_entity(candidate), params)
        tf.validate_document(document, tf.Limits(max_prompts=tf.HARD_MAX_PROMPTS))
        with self.store.write():
            self.store.save("plan_template", candidate, self.stamp)
            st.add_version(self.store, entity["id"], number, self.stamp, document, self.stamp)
            self._event("template.publish", templateId=entity["id"], templateVersion=number)
        return candidate, number

    def export(self, ref: str, number: int | None = None, *, sign: bool = False, key: str | None = None,
               ) -> tuple[bytes, dict[str, Any], bool]:
        """The file of a published (or imported) version: ``(bytes, document, unpublished_changes)``.

        Only what a version holds is written: the whitelisted template fields and the parameters, never
        plans, occurrences, check-ins, logbook data or local bookkeeping.
        """
        entity = self.resolve(ref)
        document = self.version_document(entity, number)
        if sign:
            document, _ = self.sign_document(document, key)
        unpublished = number is None and self.info(entity)["unpublishedChanges"]
        with self.store.write():
            self._event("template.export", templateId=entity["id"], templateVersion=document["template"]["templateVersion"])
        return tf.encode(document), document, unpublished

    # ------------------------------------------------------------------ files (no database)

    def keygen(self, out: str | None, name: str, force: bool) -> Any:
        from practiceplan.formats.templates import signatures

        if not _KEY_NAME.fullmatch(name):
            raise InvalidInputError("--name must be 1 to 40 letters, digits, '.', '_' or '-'",
                                    hint="e.g. --name ms-lee")
        path = Path(out).expanduser() if out else self.s.settings.data_dir / "keys" / f"{name}.key"
        return signatures.generate(path, force=force)

    def default_key(self) -> Path:
        """The key `template sign` and `export --sign` use without --key: ``keys/tutor.key`` in the data dir (what
        `template keygen` writes), or the only key there."""
        folder = self.s.settings.data_dir / "keys"
        default = folder / "tutor.key"
        if default.exists():
            return default
        others = sorted(folder.glob("*.key")) if folder.is_dir() else []
        if len(others) == 1:
            return others[0]
        raise NotFoundError(
            f"no --key given and no default key {default}" + (f" (there are {len(others)} keys in {folder})" if others else ""),
            hint="pass --key FILE" if others else "create your key once with `practiceplan template keygen`, or pass --key FILE",
        )

    def sign_document(self, document: dict[str, Any], key: str | None) -> tuple[dict[str, Any], str]:
        """``document`` signed with the private key ``key`` (default: :meth:`default_key`): (signed, fingerprint)."""
        from practiceplan.formats.templates import signatures

        private = signatures.load_private_key(Path(key).expanduser() if key else self.default_key())
        signed = signatures.sign(document, private)
        return signed, signatures.fingerprint(signed["signature"]["publicKey"])

    @staticmethod
    def fingerprint(document: dict[str, Any]) -> str | None:
        """The fingerprint of the key a template document is signed with (None when it is not signed)."""
        from practiceplan.formats.templates import signatures

        signature = document.get("signature")
        return signatures.fingerprint(signature["publicKey"]) if isinstance(signature, dict) else None

    def sign_file(self, path: str, key: str | None, out: str | None, limits: tf.Limits) -> tuple[OutputTarget, str]:
        """Sign the template file ``path`` in place, or write the signed file where ``out`` points (``-``:
        stdout; see fileio.write_output). Returns (where it went, the key's fingerprint)."""
        loaded = tf.parse_and_validate(tf.read_limited(path, limits.max_bytes), limits, path)
        signed, fingerprint = self.sign_document(loaded.doc, key)
        return write_output(out or path, tf.encode(signed), mode=0o644, replace=True), fingerprint

    def signature_status(self, loaded: tf.TemplateFile, *, check_trust: bool) -> dict[str, Any]:
        from practiceplan.formats.templates import signatures

        if loaded.signature is None:
            return {"present": False, "valid": False, "fingerprint": None, "trustedAs": None}
        public = loaded.signature["publicKey"]
        try:
            signatures.verify(loaded.doc)
            valid = True
        except NotAuthorisedError:
            valid = False
        trusted = None
        if check_trust and valid and Path(self.s.settings.db_path).exists():
            key = st.trusted_key(self.store, public)
            trusted = key["name"] if key else None
        return {"present": True, "valid": valid, "fingerprint": signatures.fingerprint(public), "trustedAs": trusted,
                "publicKey": public}

    def lint(self, path: str, limits: tf.Limits) -> dict[str, Any]:
        loaded = tf.parse_and_validate(tf.read_limited(path, limits.max_bytes), limits, path)
        signature = self.signature_status(loaded, check_trust=True)
        warnings = []
        if not signature["present"]:
            warnings.append("not signed: learners can import it only with --allow-unsigned (sign it with `template sign`)")
        elif not signature["valid"]:
            warnings.append("the signature does not match the content: sign the file again")
        for param in loaded.parameters:
            if is_required(param):
                warnings.append(f"parameter '{param['name']}' has no default: learners must give it")
        return {
            "valid": True,
            "templateId": loaded.template_id,
            "templateVersion": loaded.version,
            "title": loaded.template["title"],
            "parameters": len(loaded.parameters),
            "segments": len((loaded.template.get("metadata") or {}).get("segments") or []),
            "signature": signature,
            "warnings": warnings,
        }

    def preview(
        self, path: str, raw_params: dict[str, str], *, weeks: int, start: date | None, limits: tf.Limits,
        ask: AskParam | None = None,
    ) -> dict[str, Any]:
        """The sessions the template would create for you over ``weeks`` weeks; writes nothing."""
        from practiceplan.domain import recurrence as rec
        from practiceplan.domain.occurrences import build_occurrence, plan_recurrence, recurrence_key
        from practiceplan.domain.tz import localize

        loaded = tf.parse_and_validate(tf.read_limited(path, limits.max_bytes), limits, path)
        values = self.resolve_values(loaded.parameters, raw_params, ask)
        zone = self.zone.key
        plan = dt.build_adopted_plan(loaded.template, loaded.parameters, values, start=start, title=None, zone=zone, now=self.now)
        first = dt.adoption_start(loaded.parameters, values, start, zone, self.now)
        week_from, week_to = dt.week_dates(first, weeks, self.s.settings.week_start)
        recurrence = plan_recurrence(plan, zone)
        sessions = []
        if recurrence is not None:
            lo = localize(datetime.combine(week_from, time()), self.zone)
            hi = localize(datetime.combine(week_to, time()), self.zone)
            key = recurrence_key(plan, recurrence)
            sessions = [build_occurrence(plan, slot, key, self.now) for slot in rec.expand(recurrence, lo, hi)]
        return {
            "template": loaded.template,
            "plan": plan,
            "parameters": values,
            "sessions": sessions,
            "from": week_from.isoformat(),
            "to": (week_to - timedelta(days=1)).isoformat(),
            "firstDay": first.isoformat(),
            "weeks": weeks,
            "timezone": zone,
            "signature": self.signature_status(loaded, check_trust=True),
        }

    # ------------------------------------------------------------------ learner side

    def _check_signature(self, loaded: tf.TemplateFile, source: str, allow_unsigned: bool) -> dict[str, str] | None:
        from practiceplan.formats.templates import signatures

        if loaded.signature is None:
            if allow_unsigned:
                return None
            raise NotAuthorisedError(
                f"{source} is not signed, so it is not an approved template",
                hint="ask your tutor for a signed file; for a personal template of your own, add --allow-unsigned",
            )
        try:
            public = signatures.verify(loaded.doc)
        except NotAuthorisedError as exc:
            raise NotAuthorisedError(f"{source}: {exc.message}", hint=exc.hint) from None
        key = st.trusted_key(self.store, public)
        if key is None:
            if allow_unsigned:
                return None
            raise NotAuthorisedError(
                f"{source} is signed by a key you do not trust ({dt.key_text(signatures.fingerprint(public))})",
                hint=f"if it is your tutor's key, trust it: practiceplan template trust add ed25519:{public} --name NAME",
            )
        return key

    def import_file(self, path: str, *, allow_unsigned: bool = False, limits: tf.Limits = tf.Limits()) -> ImportResult:
        return self.import_bytes(tf.read_limited(path, limits.max_bytes), path, allow_unsigned=allow_unsigned, limits=limits)

    def import_bytes(
        self, data: bytes, source: str, *, allow_unsigned: bool = False, limits: tf.Limits = tf.Limits()
    ) -> ImportResult:
        """Validate everything (file, signature, trust, versions), then store the template in one transaction."""
        loaded = tf.parse_and_validate(data, limits, source)
        signer = self._check_signature(loaded, source, allow_unsigned)
        template_id, number = loaded.template_id, loaded.version
        existing = self.store.get("plan_template", template_id, include_deleted=True)
        live = existing is not None and not existing.get("deletedAt")
        if live and dt.template_status(existing) != "imported":
            raise InvalidInputError(
                f"{source}: template.id: '{template_id}' is one of your own templates; importing would replace it"
            )
        if live:
            before = ((existing.get("metadata") or {}).get("provenance") or {}).get("signer") or {}
            if before.get("fingerprint") and (signer is None or signer["fingerprint"] != before["fingerprint"]):
                raise NotAuthorisedError(
                    f"{source}: template '{template_id}' was signed by '{before.get('name')}' "
                    f"({dt.key_text(before['fingerprint'])}); this file is {'not signed by that key' if signer is None else 'signed by ' + repr(signer['name'])}",
                    hint="a new version must come from the same tutor key; ask your tutor",
                )
        known = st.version(self.store, template_id, number)
        if known is not None:
            if dt.content_key(known["template"], known.get("parameters") or []) != dt.content_key(loaded.template, loaded.parameters):
                raise InvalidInputError(
                    f"{source}: template.templateVersion: version {number} of this template was already imported with different content",
                    hint="ask the tutor to publish a new version instead of changing a published one",
                )
            return ImportResult(existing or loaded.template, "unchanged", number, signer, allow_unsigned and signer is None)
        latest = st.latest_version(self.store, template_id)
        becomes_current = not live or latest is None or number > latest[0]
        entity = copy.deepcopy(loaded.template)
        provenance: dict[str, Any] = {"kind": "import", "importedAt": self.stamp, "signed": signer is not None,
                                      "allowUnsigned": allow_unsigned and signer is None}
        if signer:
            provenance["signer"] = {"name": signer["name"], "fingerprint": signer["fingerprint"]}
        metadata = entity.setdefault("metadata", {})
        metadata["parameters"] = copy.deepcopy(loaded.parameters)
        metadata["provenance"] = provenance
        with self.store.write():
            st.add_version(self.store, template_id, number, loaded.template.get("publishedAt"), loaded.doc, self.stamp)
            if becomes_current:
                self.store.save("plan_template", entity, self.stamp)
            self._event(
                "template.import", templateId=template_id, templateVersion=number, signed=int(signer is not None),
                allowUnsigned=int(allow_unsigned and signer is None),
            )
        outcome = ("updated" if live else "imported") if becomes_current else "stored-older"
        return ImportResult(entity if becomes_current else existing, outcome, number, signer, provenance["allowUnsigned"])

    def gallery(
        self, *, instrument: str | None = None, level: str | None = None, tag: str | None = None, search: str | None = None
    ) -> list[dict[str, Any]]:
        """Templates you can adopt (imported, or published by you), most adopted first."""
        counts = st.adoption_counts(self.store)
        items = []
        for entity in st.templates(self.store, statuses=("imported", "published")):
            if _matches(entity, instrument, level, tag, search):
                items.append(self.info(entity, counts))
        items.sort(key=lambda i: (-i["adoptions"], (i["template"].get("title") or "").lower(), i["template"]["id"]))
        return items

    # ------------------------------------------------------------------ the sync server (--remote)

    def publish_remote(self, ref: str, visibility: str | None = None) -> tuple[dict[str, Any], int, dict[str, Any]]:
        """`template publish ID --remote`: publish here (as :meth:`publish`), then sync so the server has it now.
        The server decides who may publish: a refusal (a learner account: "forbidden") is NotAuthorisedError
        (77); the template stays published here and the refusal is kept as a sync conflict."""
        template, number = self.publish(ref, visibility)
        summary = self.s.sync.run()
        refused = [r for r in summary.rejected if r["kind"] == "plan_template" and r["id"] == template["id"]]
        if refused:
            why = "; ".join(refused[0]["problems"])
            raise NotAuthorisedError(
                f"published version {number} here, but {self.s.remote.require_url()} did not accept it ({why})",
                hint="on a practiceplan server only tutor and admin accounts publish; ask the server's admin "
                     "(`practiceplan server user add NAME --role tutor`)" if "forbidden" in why else
                     "fix what it names and run `practiceplan sync`")
        state = self._remote_state(template["id"])
        return template, number, {"remote": self.s.remote.require_url(), "sent": state is not None,
                                  "serverVersion": state, "sync": summary.as_json()}

    def _remote_state(self, template_id: str) -> int | None:
        from practiceplan.store import sync as sst

        found = sst.states(self.store.conn, "plan_template", [template_id]).get(template_id)
        return found[1] if found else None

    def gallery_remote(
        self, *, instrument: str | None = None, level: str | None = None, tag: str | None = None, search: str | None = None
    ) -> list[dict[str, Any]]:
        """`template gallery --remote`: the server's published templates this account may adopt (its own, and
        public ones by tutors), with the server's adoption counts; the same filters as the local gallery."""
        with self.s.remote.client() as client:
            found = client.gallery()
        items = []
        for entity in found:
            if not _matches(entity, instrument, level, tag, search):
                continue
            count = entity.get("adoptionCount")
            items.append({"template": entity, "status": "remote", "remote": True,
                          "adoptions": count if isinstance(count, int) and not isinstance(count, bool) else 0,
                          "latestVersion": entity.get("templateVersion"), "author": entity.get("authorId"),
                          "signedBy": entity.get("authorId"), "allowUnsigned": False})
        items.sort(key=lambda i: (-i["adoptions"], str(i["template"].get("title") or "").lower(), i["template"]["id"]))
        return items

    def _align_remote_sessions(self, plan_id: str) -> int:
        """The server makes an adopted plan's first session at the template's time of day **in UTC** (§2.5),
        while this device plans the same day at that time in the plan's own zone: two sessions on one day. Each
        untouched server-made session is moved to the plan's slot on its local day (when there is one), so the
        plan's own sessions do not double it. Returns how many were moved (queued for the next sync)."""
        from practiceplan.domain import recurrence as rec
        from practiceplan.domain.models import is_touched, occurrence_start
        from practiceplan.domain.occurrences import is_generated_id, plan_recurrence
        from practiceplan.domain.tz import localize

        plan = self.store.get("practice_plan", plan_id)
        recurrence = plan_recurrence(plan, self.zone.key) if plan is not None else None
        if recurrence is None:
            return 0
        zone = rec.get_zone(recurrence.zone)
        moved = []
        for occ in self.store.occurrences(plan_id=plan_id):
            start = occurrence_start(occ)
            if start is None or is_generated_id(occ["id"]) or is_touched(occ) or occ.get("deletedAt"):
                continue
            day = localize(datetime.combine(start.astimezone(zone).date(), time()), zone)
            slots = rec.expand(recurrence, day, day + timedelta(days=1))
            if not slots or slots[0].start == start:
                continue
            end = occurrence_start({"scheduledStart": occ.get("scheduledEnd")})
            length = (end - start) if end is not None and end > start else None
            moved.append({**occ, "scheduledStart": iso_z(slots[0].start),
                          "scheduledEnd": iso_z(slots[0].start + length) if length else occ.get("scheduledEnd"),
                          "updatedAt": self.stamp})
        if moved:
            with self.store.write():
                self.store.save_many("plan_occurrence", moved, self.stamp)
        return len(moved)

    def adopt_remote(self, template_id: str, *, start: date | None = None, title: str | None = None
                     ) -> dict[str, Any]:
        """`template adopt --remote ID`: the server adopts (``POST /api/templates/adopt``: it checks the template
        is published and visible to this account, counts the adoption and makes the plan and its first session),
        then a sync stores them here as already synced, so nothing is sent back or doubled. The server is the
        authority: no local file, signature or trusted key is involved (recorded as ``trust: "server"``)."""
        customization: dict[str, Any] = {}
        if title:
            customization["title"] = clean_line(title, "--title", max_len=tf.MAX_SHORT)
        if start is not None:
            customization["schedule"] = {"startDate": start.isoformat()}
        url = self.s.remote.require_url()
        with self.s.remote.client() as client:
            answer = client.adopt(template_id, customization)
        plan = answer.get("plan") if isinstance(answer.get("plan"), dict) else None
        occurrences = [o for o in answer.get("occurrences") or [] if isinstance(o, dict)]
        if plan is None or not isinstance(plan.get("id"), str):
            from practiceplan.errors import RemoteUnavailableError

            raise RemoteUnavailableError(f"{url} answered the adoption without a plan",
                                         hint="run `practiceplan sync`: an adopted plan arrives with it")
        summary = self.s.sync.run()
        if self._align_remote_sessions(plan["id"]):
            summary = self.s.sync.run()  # the moved session goes back now: the server and this device agree
        with self.store.write():
            self._event("template.adopt", templateId=template_id, planId=plan["id"], occurrences=len(occurrences),
                        remote=1, trust="server")
        local = self.store.get("practice_plan", plan["id"])
        return {"plan": local or plan, "occurrences": [o["id"] for o in occurrences], "templateId": template_id,
                "remote": url, "trust": "server", "synced": local is not None, "sync": summary.as_json()}

    def _iso_date(self, text: str, what: str) -> str:
        from practiceplan import dates

        return dates.parse_date(text, self.zone, self.now, what).isoformat()

    def _parse_cli_value(self, param: dict[str, Any], text: str) -> Any:
        name = param["name"]
        try:
            if param["type"] == "date":
                text = self._iso_date(text, f"--param {name}")
            return dt.parse_text_value(param, text)
        except ValueError as exc:
            raise InvalidInputError(f"--param {name}: {exc}",
                                    hint="see the parameters with `practiceplan template show ID`") from None

    def resolve_values(
        self, params: list[dict[str, Any]], raw: dict[str, str], ask: AskParam | None, previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Parameter values: given (``--param``), kept from before, default, or asked for (TTY only)."""
        declared = {p["name"]: p for p in params}
        for name in raw:
            if name not in declared:
                names = ", ".join(declared) or "none"
                raise InvalidInputError(f"--param {name}: this template has no such parameter", hint=f"its parameters: {names}")
        values: dict[str, Any] = {}
        missing: list[dict[str, Any]] = []
        for param in params:
            name = param["name"]
            if name in raw:
                values[name] = self._parse_cli_value(param, raw[name])
                continue
            if previous and name in previous:
                try:
                    values[name] = dt.parse_value(param, previous[name])
                    continue
                except ValueError:
                    pass
            if "default" in param:
                values[name] = copy.deepcopy(param["default"])
            elif is_required(param):
                missing.append(param)
        still: list[dict[str, Any]] = []
        for param in missing:
            if ask is None:
                still.append(param)
                continue
            error = None
            for _ in range(3):
                try:
                    values[param["name"]] = self._parse_cli_value(param, ask(param, error))
                    break
                except InvalidInputError as exc:
                    error = exc.message
            else:
                raise InvalidInputError(f"--param {param['name']}: {error}",
                                        hint="see the parameters with `practiceplan template show ID`")
        if still:
            listed = ", ".join(f"{p['name']} ({p['type']})" for p in still)
            raise InvalidInputError(
                f"missing required parameter{'s' if len(still) > 1 else ''}: {listed}",
                hint="pass --param NAME=VALUE for each (on a terminal you are asked for them)",
            )
        return values

    def adopt(
        self, ref: str, raw_params: dict[str, str], *, start: date | None = None, title: str | None = None,
        ask: AskParam | None = None,
    ) -> tuple[dict[str, Any], int, dict[str, Any]]:
        """Make the template your plan: all sessions over the horizon, in your time zone, fresh ids."""
        entity = self.resolve(ref)
        if dt.template_status(entity) == "draft":
            raise InvalidInputError(
                f"template '{entity.get('title')}' is a draft",
                hint=f"publish it first: practiceplan template publish {self.store.short_id('plan_template', entity['id'])}",
            )
        document = self.version_document(entity, None)
        params = document.get("parameters") or []
        values = self.resolve_values(params, raw_params, ask)
        plan = dt.build_adopted_plan(
            document["template"], params, values, start=start, title=title, zone=self.zone.key, now=self.now
        )

        def record(count: int) -> None:
            self._event(
                "template.adopt", templateId=entity["id"], templateVersion=plan["templateVersion"], planId=plan["id"],
                occurrences=count, parameters=len(values),
            )

        created = self.s.plans.save_new(plan, also=record)
        return plan, created, values

    def upgrade(
        self, plan_ref: str, raw_params: dict[str, str], *, dry_run: bool = False, prefer: str | None = None,
        decide: DecideClash | None = None, ask: AskParam | None = None, to_version: int | None = None,
    ) -> UpgradeResult:
        """Apply a newer version of the plan's template as a three-way merge (learner edits win)."""
        from practiceplan.domain.template_merge import logical, three_way

        plan = self.store.resolve("practice_plan", plan_ref)
        template_id, from_version, target_row = self._upgrade_target(plan, to_version)
        to = target_row["version"]
        if to <= from_version:
            return UpgradeResult(plan, template_id, from_version, from_version, Merge())
        adoption = (plan.get("metadata") or {}).get("adoption") or {}
        previous = adoption.get("parameters") if isinstance(adoption.get("parameters"), dict) else {}
        base_logical = self._base_logical(plan, template_id, from_version, previous)
        theirs_document = target_row["document"]
        theirs_params = theirs_document.get("parameters") or []
        values = self.resolve_values(theirs_params, raw_params, ask, previous)
        theirs_plan = self._rebuild(plan, theirs_document["template"], theirs_params, values)
        merge = three_way(base_logical, logical(plan), logical(theirs_plan))
        if prefer:
            merge.decide_all(prefer)
        elif decide is not None:
            for clash in merge.clashes:
                clash.choice = decide(clash)
        result = UpgradeResult(plan, template_id, from_version, to, merge, has_base=base_logical is not None)
        if dry_run:
            return result
        if merge.undecided:
            paths = [c.path for c in merge.undecided]
            shown = ", ".join(paths[:8]) + (" ..." if len(paths) > 8 else "")
            raise InvalidInputError(
                f"{len(paths)} clash{'es' if len(paths) > 1 else ''} between your changes and version {to}: {shown}",
                hint="rerun with --mine (keep yours) or --theirs (take the template's); --dry-run shows the diff; "
                "on a terminal you are asked for each",
            )
        result.plan, changes = self._apply_upgrade(result, values)
        result.sessions, result.occurrences_changed = changes.as_json(), changes.total
        result.applied = True
        return result

    def _upgrade_target(self, plan: dict[str, Any], to_version: int | None) -> tuple[str, int, dict[str, Any]]:
        """(template id, the plan's version, the stored version to upgrade to)."""
        template_id = plan.get("sourceTemplateId")
        if not template_id:
            raise InvalidInputError(f"plan '{plan.get('title')}' was not adopted from a template",
                                    hint="only plans made with `practiceplan template adopt` can be upgraded")
        rows = st.versions(self.store, template_id)
        if not rows:
            raise NotFoundError(
                f"template '{template_id}' is not in this database",
                hint="import its new version first: practiceplan template import FILE",
            )
        target_row = rows[-1] if to_version is None else next((r for r in rows if r["version"] == to_version), None)
        if target_row is None:
            raise NotFoundError(f"template '{template_id}' has no version {to_version}")
        return template_id, plan.get("templateVersion") or 1, target_row

    def _rebuild(self, plan: dict[str, Any], template: dict[str, Any], params: list[dict[str, Any]],
                 values: dict[str, Any]) -> dict[str, Any]:
        """The plan that adopting ``template`` with ``values`` gives, with the adoption's start, title and zone."""
        adoption = (plan.get("metadata") or {}).get("adoption") or {}
        start = adoption_start(plan)
        title = adoption.get("title") if isinstance(adoption.get("title"), str) else None
        zone = plan_zone_name(plan, self.zone.key)
        return dt.build_adopted_plan(template, params, values, start=start, title=title, zone=zone, now=self.now)

    def _base_logical(self, plan: dict[str, Any], template_id: str, version: int,
                      previous: dict[str, Any]) -> dict[str, Any] | None:
        """The merge base: the plan as the adopted version would build it (None when that version is unknown)."""
        from practiceplan.domain.template_merge import logical

        base_document = st.version(self.store, template_id, version)
        if base_document is None:
            return None
        base_params = base_document.get("parameters") or []
        try:
            base_values = self.resolve_values(base_params, {}, None, previous)
            return logical(self._rebuild(plan, base_document["template"], base_params, base_values))
        except InvalidInputError:
            return None

    def _apply_upgrade(self, result: UpgradeResult, values: dict[str, Any]) -> tuple[dict[str, Any], SessionChanges]:
        """Write the merged plan (and regenerate its sessions) in one transaction: (plan, sessions changed)."""
        from practiceplan.domain.template_merge import apply_merge, logical, merged_fields

        plan, merge, to = result.plan, result.merge, result.to_version
        adoption = (plan.get("metadata") or {}).get("adoption") or {}
        updated = apply_merge(plan, merged_fields(logical(plan), merge), now=self.now, default_zone=self.zone.key)
        updated["templateVersion"] = to
        metadata = updated.setdefault("metadata", {})
        metadata["adoption"] = {**adoption, "templateVersion": to, "parameters": values, "upgradedAt": self.stamp}
        start = adoption_start(plan)
        if start and "start" not in adoption:
            metadata["adoption"]["start"] = start.isoformat()

        def replace(current: dict[str, Any]) -> dict[str, Any]:
            if current != plan:
                raise InvalidInputError("the plan changed while upgrading; run the command again",
                                        hint="another practiceplan command changed it meanwhile")
            return updated

        def record(count: int) -> None:
            self._event(
                "template.upgrade", planId=plan["id"], templateId=result.template_id,
                fromVersion=result.from_version, toVersion=to,
                changed=sum(1 for c in merge.changes if c.takes_theirs), clashes=len(merge.clashes),
            )

        return self.s.plans.save_edit(plan, replace, also=record)

    # ------------------------------------------------------------------ trust

    def trust_add(self, key_text: str, name: str) -> dict[str, str]:
        from practiceplan.formats.templates import signatures

        public = signatures.parse_public_key(key_text)
        label = clean_line(name, "--name", max_len=60)
        with self.store.write():
            return st.add_trusted_key(self.store, signatures.fingerprint(public), label, public, self.stamp)

    def trust_list(self) -> list[dict[str, str]]:
        return st.trusted_keys(self.store)

    def trust_remove(self, ref: str) -> dict[str, str]:
        key = st.find_trusted_key(self.store, ref)
        with self.store.write():
            st.remove_trusted_key(self.store, key["fingerprint"])
        return key


def _input_given(inp: Any) -> bool:
    return any(
        getattr(inp, name) is not None
        for name in ("title", "description", "instrument", "focus", "techniques", "pieces", "segments", "prompts", "targets")
    ) or inp.schedule_given()


def _matches(entity: dict[str, Any], instrument: str | None, level: str | None, tag: str | None,
             search: str | None) -> bool:
    """The gallery filters (local and --remote)."""
    meta = entity.get("metadata") if isinstance(entity.get("metadata"), dict) else {}
    tags = [t.lower() for t in entity.get("tags") or [] if isinstance(t, str)]
    if instrument:
        wanted = instrument.strip().lower()
        if str(meta.get("instrument") or "").lower() != wanted and f"instrument:{wanted}" not in tags:
            return False
    if level and str(meta.get("level") or "").lower() != level.strip().lower():
        return False
    if tag and not any(tag.strip().lower() in t for t in tags):
        return False
    return not (search and search.strip().lower() not in _search_text(entity))


def _search_text(entity: dict[str, Any]) -> str:
    meta = entity.get("metadata") or {}
    parts: list[str] = [entity.get("title") or "", entity.get("description") or ""]
    parts += list(entity.get("focusAreas") or []) + list(entity.get("techniques") or []) + list(entity.get("tags") or [])
    for ref in entity.get("pieceRefs") or []:
        parts += [str(ref.get("title") or ""), str(ref.get("composer") or "")]
    parts += [str(meta.get("instrument") or ""), str(meta.get("level") or "")]
    parts += [str(s.get("label") or "") for s in meta.get("segments") or [] if isinstance(s, dict)]
    return "\n".join(parts).lower()
