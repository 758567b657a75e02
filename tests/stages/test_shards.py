"""Stages as plan -> run shard -> commit: sharded work gives the in-process loop's records."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from typer.testing import CliRunner

from t2iaudit import stages
from t2iaudit.cli import app
from t2iaudit.run.lifecycle import open_run
from t2iaudit.run.store import RunStore
from t2iaudit.spec import load_spec
from tests.helpers import BALANCED, SKEWED, fake_spec, lines

PINNED = {
    "judgements.jsonl": "5b8cf1312d8698e86496e636bcde4f235c419e44d5b4bddf05fbeef7e68fca44",
    "metrics.jsonl": "9a83d37b046ba9ce6558f43c9662ab5af0bdad36d6dc6e8f5252875e46045636",
}
"""sha256 of a fake audit's records: a refactoring that changes a label or a metric shows here
(update the pin only for a change of behaviour you meant, and say so in the commit)."""


def _audit(spec: Path, out: Path) -> None:
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output


def test_two_runs_of_one_spec_give_identical_records(tmp_path: Path):
    spec = fake_spec(tmp_path, models={"fair": BALANCED, "skewed": SKEWED})
    _audit(spec, tmp_path / "a")
    _audit(spec, tmp_path / "b")
    for name in ("images.jsonl", "judgements.jsonl", "metrics.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    timings = lines(tmp_path / "a", "timings.jsonl")
    assert timings and {t["stage"] for t in timings} == {"generate", "judge"}
    assert not [r for r in lines(tmp_path / "a", "judgements.jsonl") if "seconds" in r]
    digests = {n: hashlib.sha256((tmp_path / "a" / n).read_bytes()).hexdigest() for n in PINNED}
    assert digests == PINNED


def _shard(args: tuple[stages.GenerationShard, str, str]) -> stages.ShardResult:
    shard, spec_path, root = args
    spec = load_spec(spec_path)
    prompts = {p.prompt_id: p for p in stages.expand_prompts(spec)}
    return stages.run_generation_shard(shard, spec, prompts, Path(root))


def test_generate_shards_in_two_worker_processes_match_the_in_process_loop(tmp_path: Path):
    spec_path = fake_spec(tmp_path, models={"fair": BALANCED, "skewed": SKEWED}, prompts=5, replicates=3)
    spec = load_spec(spec_path)
    prompts = stages.expand_prompts(spec)
    loop = open_run(spec, tmp_path / "loop")
    stages.generate_images(loop, spec, prompts)

    sharded = open_run(spec, tmp_path / "sharded")
    sharded.write_prompts(prompts)
    shards = stages.plan_generation(sharded, spec, prompts, shard_size=4)
    assert len(shards) == 8 and len({s.model_id for s in shards}) == 2  # 2 models x 15 images / 4
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        results = list(pool.map(_shard, [(s, str(spec_path), str(sharded.root)) for s in reversed(shards)]))
    assert len({r.shard for r in results}) == 8
    for result in results:  # the one writer commits, in whatever order shards finish
        stages.commit_generation(sharded, result)
    stages.commit_generation(sharded, results[0])  # a shard committed twice adds nothing

    def records(store: RunStore) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True) for r in store.read("images.jsonl"))

    assert records(sharded) == records(loop) and len(records(loop)) == 30
    assert not stages.plan_generation(sharded, spec, prompts)  # nothing left to make
    for record in sharded.images():
        assert (sharded.root / record.path).is_file()


def test_shards_can_return_their_files_to_a_driver_without_the_run_directory(tmp_path: Path):
    spec = load_spec(fake_spec(tmp_path, prompts=2, replicates=2))
    prompts = stages.expand_prompts(spec)
    store = open_run(spec, tmp_path / "run")
    store.write_prompts(prompts)
    [shard] = stages.plan_generation(store, spec, prompts, shard_size=4)
    result = stages.run_generation_shard(shard, spec, {p.prompt_id: p for p in prompts}, None)
    assert len(result.files) == 4 and not (store.root / "images").exists()
    assert stages.commit_generation(store, result) == 4
    assert all((store.root / r.path).is_file() for r in store.images())


def test_judge_shards_committed_out_of_order_give_the_loops_judgements(tmp_path: Path):
    spec_path = fake_spec(tmp_path, models={"fair": BALANCED}, prompts=4, replicates=3, judge_batch_size=5)
    spec = load_spec(spec_path)
    prompts = stages.expand_prompts(spec)
    runs = {}
    for name in ("loop", "sharded"):
        store = open_run(spec, tmp_path / name)
        stages.generate_images(store, spec, prompts)
        runs[name] = store
    stages.judge_images(runs["loop"], spec)
    shards = stages.plan_judging(runs["sharded"], spec)
    assert [len(s.items) for s in shards] == [5, 5, 2]
    for shard in reversed(shards):
        stages.commit_judging(runs["sharded"], stages.run_judge_shard(shard, spec, runs["sharded"].root))
    assert not stages.plan_judging(runs["sharded"], spec)

    def records(store: RunStore) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True) for r in store.read("judgements.jsonl"))

    assert records(runs["sharded"]) == records(runs["loop"])
