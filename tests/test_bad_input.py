"""The bad-input catalogue (``tests/data/bad_inputs.yaml``): each malformed input and the exact
error a user sees. The CLI answers one line on stderr naming the file and the field (or row and
column) and exits 2, with no traceback and nothing written; the service answers 4xx JSON with no
traceback and never the API key."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from t2iaudit.cli import app
from tests.helpers import FAKE_JUDGE

CATALOGUE = Path(__file__).parent / "data" / "bad_inputs.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CATALOGUE.read_text())
KEY = "catalogue-key-9d2e"


def _content(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if "base64" in value:
        return base64.b64decode(value["base64"])
    buf = io.BytesIO()
    side = int(value["png"])
    noise = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(noise, "RGB").save(buf, format="PNG")  # noise: a cut file loses pixels
    data = buf.getvalue()
    return data[: value["truncate"]] if "truncate" in value else data


def _fill(text: str, folder: Path) -> str:
    return text.replace("{dir}", str(folder)).replace("{fake_judge}", str(FAKE_JUDGE))


def _write_files(case: dict[str, Any], folder: Path) -> None:
    for name, value in (case.get("files") or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _content(value)
        path.write_bytes(_fill(data.decode("utf-8"), folder).encode() if isinstance(value, str) else data)


def test_the_catalogue_is_large_and_covers_every_kind_of_input():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 30
    kinds = {i.split("-")[0] for i in ids}
    assert kinds == {"spec", "prompt", "judge", "labels", "replay", "calibration", "reference", "service"}


CLI_CASES = [c for c in CASES if "run" in c]


TEST_PLUGINS = {"fake-probe"}
"""Generators that test modules register for the whole session (``tests/flows/dask_probe.py``);
left out here, so the catalogue's messages list what users have whatever ran before."""


@pytest.mark.parametrize("case", CLI_CASES, ids=[c["id"] for c in CLI_CASES])
def test_cli_error(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from t2iaudit.generators.registry import GENERATORS

    shipped = {k: v for k, v in GENERATORS._items.items() if k not in TEST_PLUGINS}
    monkeypatch.setattr(GENERATORS, "_items", shipped)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # relative paths in a spec resolve against the spec, not the working directory
    try:
        _write_files(case, tmp_path)
        before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
        result = CliRunner().invoke(app, [_fill(a, tmp_path) for a in case["run"]])
    finally:
        os.chdir(cwd)
    *warnings, line = result.stderr.splitlines() or [""]
    assert line == f"error: {_fill(case['error'], tmp_path)}", result.output
    assert result.exit_code == 2
    assert "Traceback" not in result.output and not [w for w in warnings if w.startswith("error")]
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    new = [p for p in after if p not in before]
    if case.get("writes") == "run":  # the run directory, but no record in it
        assert all(p.parts[0] == "run" for p in new) and not (tmp_path / "run" / "images.jsonl").exists()
    else:
        assert new == []  # nothing written


SERVICE_CASES = [c for c in CASES if "request" in c]


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from t2iaudit.debias.engine import DebiasEngine
    from t2iaudit.service import ServiceSettings, create_app

    with TestClient(create_app(DebiasEngine(), ServiceSettings(api_key=KEY)), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("case", SERVICE_CASES, ids=[c["id"] for c in SERVICE_CASES])
def test_service_error(case: dict[str, Any], client):
    req = case["request"]
    auth = req.get("auth", True)
    headers = {"Authorization": f"Bearer {KEY if auth is True else 'wrong-key'}"} if auth else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if "json" in req:
        kwargs["json"] = req["json"]
    elif "body" in req or "body_bytes" in req:
        kwargs["content"] = req["body"].encode() if "body" in req else b"x" * req["body_bytes"]
        headers["content-type"] = "application/json"
    r = client.request(req["method"], req["path"], **kwargs)
    assert (r.status_code, r.json()) == (case["status"], case["response"]), r.text
    assert r.headers["content-type"] == "application/json"
    assert "Traceback" not in r.text and KEY not in r.text
