"""One registry type: lazy entries, did-you-mean, and plugins from other packages' entry points."""

from __future__ import annotations

import importlib.metadata

import pytest

from t2iaudit.registry import Registry, UnknownNameError

THING = object()


def test_lazy_entries_import_on_first_use_and_unknown_names_suggest():
    reg: Registry[object] = Registry("thing")
    reg.register_lazy("it", "tests.test_registry:THING")
    assert reg.get("it") is THING
    with pytest.raises(UnknownNameError, match="did you mean 'it'"):
        reg.get("itt")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("it", object())


def test_plugins_register_through_entry_points_and_never_replace_a_built_in(monkeypatch):
    found = [
        importlib.metadata.EntryPoint("extra", "tests.test_registry:THING", "t2iaudit.things"),
        importlib.metadata.EntryPoint("builtin", "os:sep", "t2iaudit.things"),
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [e for e in found if e.group == group])
    reg: Registry[object] = Registry("thing", entry_points="t2iaudit.things")
    reg.register("builtin", 1)
    assert reg.names() == ["builtin", "extra"]
    assert reg.get("extra") is THING and reg.get("builtin") == 1


def test_the_fakes_arrive_as_plugins():
    from t2iaudit.fakes import GENERATOR, JUDGE
    from t2iaudit.generators.registry import GENERATORS
    from t2iaudit.judges.registry import JUDGE_KINDS

    assert GENERATORS.get("fake") is GENERATOR and JUDGE_KINDS.get("fake") is JUDGE
    eps = {e.name: e.value for e in importlib.metadata.entry_points(group="t2iaudit.generators")}
    assert eps["fake"] == "t2iaudit.fakes:GENERATOR"
