"""Registers every judge kind. Importing this is cheap: model code loads inside ``build``."""

from __future__ import annotations

from t2iaudit.judges.base import JUDGE_KINDS, JudgeKind
from t2iaudit.judges.caption import CaptionJudgeConfig, build_caption_judge
from t2iaudit.judges.clip import ClipJudgeConfig, build_clip_judge
from t2iaudit.judges.face import FaceJudgeConfig, build_face_judge
from t2iaudit.judges.mllm import MllmJudgeConfig, build_mllm_judge

JUDGE_KINDS.register("face", JudgeKind(FaceJudgeConfig, build_face_judge))
JUDGE_KINDS.register("clip", JudgeKind(ClipJudgeConfig, build_clip_judge))
JUDGE_KINDS.register("mllm", JudgeKind(MllmJudgeConfig, build_mllm_judge))
JUDGE_KINDS.register("caption", JudgeKind(CaptionJudgeConfig, build_caption_judge))
