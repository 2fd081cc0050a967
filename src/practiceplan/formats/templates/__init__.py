"""Tutor plan templates as files: format (decode, validate, encode), JSON Schema, signatures, upgrade merge.

* :mod:`practiceplan.formats.templates.format` — ``parse_and_validate(bytes)``: pure, no I/O, every error names the
  JSON path of the first problem; canonical and pretty encoders.
* :mod:`practiceplan.formats.templates.schema` — the published JSON Schema (``docs/template.schema.json``).
* :mod:`practiceplan.formats.templates.signatures` — Ed25519 over canonical JSON (``cryptography``, imported lazily).
* :mod:`practiceplan.domain.template_merge` — three-way merge of a new template version into an adopted plan.

See ``docs/template-format.md``.
"""
