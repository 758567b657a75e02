"""The stages of an audit, each reading and writing the run directory.

    expand_prompts -> generate_images -> judge_images -> compute_metrics -> write_report

Generation and judging are plan -> run shard -> commit (``generate``, ``judge``): planning reads
the run directory and lists what is missing as shards (one model or judge, one batch); a shard
loads its model once per process, writes only content-addressed files and returns records; one
writer per run directory commits them. The CLI runs the shards in a loop (``generate_images``,
``judge_images``, ``run_audit``); the Prefect flows (``flows/``) map them over a task runner.
"""

from t2iaudit.stages.audit import check_inputs, compute_metrics, expand_prompts, finish_run, run_audit, write_report
from t2iaudit.stages.common import FAULT_ENV, NullProgress, Progress, ShardResult
from t2iaudit.stages.generate import (
    GenerationShard,
    MadeImages,
    commit_generation,
    generate_images,
    generator_for,
    make_images,
    plan_generation,
    release_generators,
    run_generation_shard,
    store_images,
)
from t2iaudit.stages.judge import (
    JudgeShard,
    calibrate_judges,
    commit_judge_batch,
    commit_judging,
    judge_for,
    judge_images,
    judged_pairs,
    plan_judging,
    release_judges,
    run_judge_shard,
)

__all__ = [
    "FAULT_ENV",
    "GenerationShard",
    "JudgeShard",
    "MadeImages",
    "NullProgress",
    "Progress",
    "ShardResult",
    "calibrate_judges",
    "check_inputs",
    "commit_generation",
    "commit_judge_batch",
    "commit_judging",
    "compute_metrics",
    "expand_prompts",
    "finish_run",
    "generate_images",
    "generator_for",
    "judge_for",
    "judge_images",
    "judged_pairs",
    "make_images",
    "plan_generation",
    "plan_judging",
    "release_generators",
    "release_judges",
    "run_audit",
    "run_generation_shard",
    "run_judge_shard",
    "store_images",
    "write_report",
]
