"""``prefect.yaml``: every deployment points at a flow (the audit, or the closed debias loop for a
spec with a ``debias:`` section), a spec that loads and a valid schedule."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import REPO


def _deployments() -> list[dict]:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


def test_every_shipped_audit_has_a_deployment():
    specs = {d["parameters"]["spec"] for d in _deployments()}
    assert specs == {f"audits/{p.name}" for p in (REPO / "audits").glob("*.yaml")}


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_a_deployment_names_the_flow_a_loadable_spec_and_a_valid_cron(deployment: dict):
    from flows.audit import audit
    from flows.debias_loop import debias_audit
    from flows.schedule import check_cron
    from t2iaudit.spec import load_spec

    spec = load_spec(REPO / deployment["parameters"]["spec"])
    flow = debias_audit if spec.debias is not None else audit
    path, name = deployment["entrypoint"].split(":")
    assert (REPO / path).resolve() == (REPO / flow.fn.__module__.replace(".", "/")).with_suffix(".py")
    assert name == flow.fn.__name__
    assert set(flow.parameters.required or []) <= set(deployment["parameters"]) <= set(flow.parameters.properties)
    for schedule in deployment["schedules"]:
        check_cron(schedule["cron"], schedule.get("timezone"))
    assert deployment["concurrency_limit"] == 1  # one audit at a time per deployment


def test_a_bad_cron_is_refused_naming_the_option():
    from flows.schedule import check_cron
    from t2iaudit.errors import InputError

    with pytest.raises(InputError) as err:
        check_cron("every night")
    assert "--cron" in str(err.value) and "every night" in str(err.value)


def test_schedule_refuses_a_bad_cron_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from t2iaudit.cli import app
    from tests.helpers import fake_spec

    result = CliRunner().invoke(app, ["schedule", str(fake_spec(tmp_path)), "--cron", "61 * * * *"])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1].startswith("error: ")
    assert "--cron" in result.output
