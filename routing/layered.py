"""The layered task classifier: override, language, rules and hints, the learned model, a judge."""

from __future__ import annotations

import logging
from pathlib import Path

from policies.classification import Classification, RuleClassifier
from policies.routing_policy import RoutingPolicy
from policies.types import DecisionLayer, TaskType
from routing.encoder import MiniLMEncoder, shared_encoder
from routing.features import feature_vector
from routing.language import ask_text, guess, pasted_foreign_share
from routing.learned import LABELS, LearnedModel

log = logging.getLogger(__name__)
DEFAULT_MODEL = Path(__file__).resolve().parent / "data" / "learned.npz"


class LayeredClassifier:
    """Language first (a request written in another language is multilingual), then the learned
    model over the embedding and the rule and hint votes; rules alone when the model is missing."""

    def __init__(
        self,
        policy: RoutingPolicy,
        *,
        encoder: MiniLMEncoder | None,
        model: LearnedModel | None,
        unavailable_reason: str | None = None,
    ) -> None:
        self.rules = RuleClassifier(policy)
        self.encoder = encoder
        self.model = model
        self.unavailable_reason = unavailable_reason

    @classmethod
    def load(cls, policy: RoutingPolicy, model_path: Path = DEFAULT_MODEL) -> LayeredClassifier:
        """With the learned layer if its files load; otherwise rules alone, logged."""
        try:
            encoder = shared_encoder()
            model = LearnedModel.load(model_path)
        except (OSError, ValueError, KeyError) as exc:
            reason = (
                f"learned model unavailable ({type(exc).__name__}: {exc}); "
                "classifying with rules alone"
            )
            log.warning(reason)
            return cls(policy, encoder=None, model=None, unavailable_reason=reason)
        return cls(policy, encoder=encoder, model=model)

    def with_policy(self, policy: RoutingPolicy) -> LayeredClassifier:
        """The same learned layer over another policy's rules and hints."""
        return LayeredClassifier(
            policy,
            encoder=self.encoder,
            model=self.model,
            unavailable_reason=self.unavailable_reason,
        )

    def describe(self) -> dict[str, object]:
        """Which layers run, for the rules endpoint."""
        layers = ["override", "language", "learned" if self.model else "rules"]
        return {
            "active": self.active,
            "layers": layers,
            "learned_model": None
            if self.model is None
            else {
                "encoder": "all-MiniLM-L6-v2 (onnxruntime)",
                "training_examples": len(self.model.train_ids),
                "training_sha256": self.model.training_sha256,
                "window_tokens": None if self.encoder is None else self.encoder.max_tokens,
                "int8": None if self.encoder is None else self.encoder.int8,
            },
            "unavailable_reason": self.unavailable_reason,
        }

    @property
    def active(self) -> str:
        """Which classifier decides: `learned` or `rules`."""
        return "learned" if self.model is not None else "rules"

    def classify(self, prompt: str, task_hints: list[str] | None = None) -> Classification:
        language = guess(prompt)
        rule_scores, rule_reasons = self.rules.rule_scores(prompt)
        hint_scores, hint_reasons = self.rules.hint_scores(task_hints)
        if language.foreign:
            scores = dict.fromkeys(TaskType, 0.0)
            scores[TaskType.MULTILINGUAL] = 1.0
            return Classification(
                TaskType.MULTILINGUAL,
                round(0.8 + 0.2 * language.share, 4),
                scores,
                [f"written mainly in another language: {language.reason}"],
                DecisionLayer.LANGUAGE,
            )
        if self.model is None or self.encoder is None:
            return self.rules.classify(prompt, task_hints)
        ask = ask_text(prompt)
        embedding = self.encoder.encode(ask)
        features = feature_vector(
            embedding, ask, rule_scores, hint_scores, pasted_foreign_share(prompt)
        )
        probs = self.model.probabilities(features)
        best = int(probs.argmax())
        nearest = self.model.nearest(embedding)
        reasons = [*rule_reasons, *hint_reasons]
        reasons += [
            f"nearest example {i} ({label.value}, cosine {sim:.2f})" for i, label, sim in nearest
        ]
        scores = {LABELS[i]: round(float(p), 6) for i, p in enumerate(probs)}
        return Classification(
            LABELS[best], round(float(probs[best]), 4), scores, reasons, DecisionLayer.LEARNED
        )
