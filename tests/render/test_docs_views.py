"""The SVG pictures in docs/img are rendered from the demo data by docs/render_views.py and kept current."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def visible_text(svg: str) -> str:
    """The words a person sees (Rich's exact markup may change between releases; the content may not)."""
    return re.sub(r"\s+", " ", " ".join(re.findall(r">([^<>]+)</text>", svg))).replace("&#160;", " ").strip()


def test_docs_pictures_are_current(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("render_views", ROOT / "docs" / "render_views.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.render(tmp_path)
    assert [p.name for p in written] == ["stats.svg", "forecast.svg"]
    for path in written:
        fresh = visible_text(path.read_text(encoding="utf-8"))
        committed = visible_text((ROOT / "docs" / "img" / path.name).read_text(encoding="utf-8"))
        assert fresh == committed, f"docs/img/{path.name} is stale: run `python docs/render_views.py`"
    assert "Adherence" in visible_text((tmp_path / "stats.svg").read_text(encoding="utf-8"))
