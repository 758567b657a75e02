"""Realisation profiles: built from a run, solved on the simplex, and a calibration by simulation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from t2iaudit.cli import app
from t2iaudit.debias.engine import DebiasEngine, EngineSettings
from t2iaudit.debias.profiles import AttributeProfile, build_profile, list_profiles, solve, write_profile
from t2iaudit.debias.schema import PlanRequest
from t2iaudit.errors import InputError
from tests.debias import simulate


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    return simulate.write_run(tmp_path_factory.mktemp("sim") / "run", per_row=2000)


@pytest.fixture(scope="module")
def profile_dir(sim_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("profiles")
    write_profile(build_profile(sim_run, "simgen-face"), folder)
    return folder


def test_profile_from_a_run_directory(sim_run):
    prof = build_profile(sim_run, "simgen-face")
    gender = prof.attributes["gender"]
    assert gender.labels == ["female", "male"] and gender.requested == ["female", "male", "unspecified"]
    assert [sum(r) for r in gender.counts] == [2000, 2000, 2000]
    np.testing.assert_allclose(np.array(gender.matrix), np.array(list(simulate.TRUE_M.values())), atol=0.03)
    assert prof.model["model_id"] == "simgen" and prof.judge["judge_id"] == simulate.JUDGE
    assert prof.source["run_id"] == "sim-run" and prof.format_version == 1
    assert gender.solved is not None and gender.solved.tv < 1e-3
    with pytest.raises(InputError, match="judge 'clip'"):
        build_profile(sim_run, "x", judge="clip")
    with pytest.raises(InputError, match="must match"):
        build_profile(sim_run, "../etc/passwd")


def test_solve_reaches_a_reachable_target_and_reports_an_unreachable_one():
    ap = AttributeProfile(
        labels=["f", "m"],
        requested=["f", "m"],
        counts=[[70, 20, 10], [5, 90, 5]],
        matrix=[[0.7, 0.2, 0.1], [0.05, 0.9, 0.05]],
    )
    sol = solve(ap, {"f": 0.5, "m": 0.5})
    w = np.array([sol.proportions["f"] * 0.9, sol.proportions["m"] * 0.95])
    w /= w.sum()
    got = w @ np.array([[0.7 / 0.9, 0.2 / 0.9], [0.05 / 0.95, 0.9 / 0.95]])
    np.testing.assert_allclose(got, [0.5, 0.5], atol=1e-4)
    assert sol.tv < 1e-4 and sum(sol.proportions.values()) == pytest.approx(1.0, abs=1e-5)
    far = solve(ap, {"f": 0.9, "m": 0.1})
    assert far.proportions["f"] == pytest.approx(1.0, abs=1e-6)
    assert far.reachable["f"] == pytest.approx(0.7 / 0.9, abs=1e-4) and far.tv == pytest.approx(
        0.9 - 0.7 / 0.9, abs=1e-4
    )


def test_calibration_brings_the_judged_distribution_to_the_target(profile_dir):
    """A simulated generator with a known matrix: profile-solved requests reach 50/50, plain quotas do not."""
    engine = DebiasEngine(EngineSettings(profile_dirs=[str(profile_dir)]))
    target = {"female": 0.5, "male": 0.5}

    def achieved_tv(profile):
        planned = []
        for seed in range(4):  # 4 x 1000 planned images
            req = PlanRequest(
                prompt="a photo of a doctor", n=1000, seed=seed, attributes={"gender": {}}, profile=profile
            )
            resp = engine.plan(req)
            planned += [it.assignment["gender"] for it in resp.items]
        share = simulate.judged_share(simulate.render(planned, np.random.default_rng(5)))
        return 0.5 * sum(abs(share[k] - target[k]) for k in target), resp

    tv_profile, resp = achieved_tv("simgen-face")
    tv_plain, _ = achieved_tv(None)
    assert resp.profile["name"] == "simgen-face" and resp.versions["profile"].startswith("simgen-face@1+")
    assert resp.targets["gender"]["female"] > 0.6  # more "female" requested than the target share
    print(f"calibration: TV to target {tv_profile:.4f} with the profile, {tv_plain:.4f} without")
    assert tv_profile < 0.03, tv_profile
    assert tv_plain > 0.08, tv_plain
    assert not [w for w in resp.warnings if w.code == "TARGET_UNREACHABLE"]


def test_unreachable_target_is_reported_with_the_best_reachable_distribution(profile_dir):
    engine = DebiasEngine(EngineSettings(profile_dirs=[str(profile_dir)]))
    resp = engine.plan(
        PlanRequest(
            prompt="a photo of a doctor", n=10, profile="simgen-face", attributes={"gender": {"target": [0.9, 0.1]}}
        )
    )
    warn = [w for w in resp.warnings if w.code == "TARGET_UNREACHABLE"]
    assert len(warn) == 1 and warn[0].details["tv"] > 0.05
    assert warn[0].details["reachable"]["female"] < 0.85 and "best reachable" in warn[0].message
    with pytest.raises(InputError, match="unknown profile 'nope'"):
        engine.plan(PlanRequest(prompt="a doctor", n=2, profile="nope", attributes={"gender": {}}))


def test_unspecified_row_lets_the_solver_use_the_unedited_prompt(profile_dir):
    engine = DebiasEngine(EngineSettings(profile_dirs=[str(profile_dir)]))
    req = PlanRequest(
        prompt="a photo of a doctor",
        n=100,
        profile="simgen-face",
        attributes={"gender": {"classes": ["female", "male", "unspecified"], "target": [0.3, 0.7, 0.0]}},
    )
    resp = engine.plan(req)
    assert set(resp.targets["gender"]) == {"female", "male", "unspecified"}
    assert resp.profile["attributes"]["gender"]["tv"] < 0.01


def test_cli_builds_a_profile_and_lists_it(sim_run, tmp_path):
    result = CliRunner().invoke(app, ["debias-profile", str(sim_run), "--name", "cli-prof", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "cli-prof.json").read_text())
    assert data["format_version"] == 1 and data["attributes"]["gender"]["requested"][-1] == "unspecified"
    assert [p.name for p in list_profiles([tmp_path])] == ["cli-prof"]
    bad = CliRunner().invoke(app, ["debias-profile", str(tmp_path), "--name", "x"])
    assert bad.exit_code == 2 and "not a run directory" in bad.output
