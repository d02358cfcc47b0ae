"""The promotion gate: may a candidate model replace the champion? (pure)"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.config import PromotionConfig
from training.evaluate import EvaluationReport


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def decide_promotion(
    candidate: EvaluationReport, champion: EvaluationReport | None, config: PromotionConfig
) -> PromotionDecision:
    """Promote only a candidate that is at least as good as the champion on the same data.

    Both reports must come from the same evaluation tickets. The candidate must
    keep every class's recall at or above its floor, and either match or beat the
    champion's macro-F1 (within ``macro_f1_tolerance``) or, for the first model,
    beat the majority-class baseline.
    """
    if champion is not None and champion.n != candidate.n:
        raise ValueError(
            f"candidate and champion were evaluated on different data ({candidate.n} vs {champion.n} tickets)"
        )
    failures, passes = [], []
    for label, metrics in candidate.per_class.items():
        floor = config.floor_for(label)
        if metrics.support and metrics.recall < floor:
            failures.append(f"recall of {label!r} is {metrics.recall:.3f}, below its floor {floor:.3f}")
    if not failures:
        passes.append("every class's recall is at or above its floor")

    if champion is None:
        baseline = candidate.majority_baseline
        verdict = f"macro-F1 {candidate.macro_f1:.4f} vs majority baseline {baseline.macro_f1:.4f} (always {baseline.label!r})"
        if candidate.macro_f1 > baseline.macro_f1:
            passes.append(f"first model beats the baseline: {verdict}")
        else:
            failures.append(f"first model does not beat the baseline: {verdict}")
    else:
        floor = champion.macro_f1 - config.macro_f1_tolerance
        verdict = f"macro-F1 {candidate.macro_f1:.4f} vs champion {champion.macro_f1:.4f}"
        if candidate.macro_f1 >= floor:
            passes.append(f"matches or beats the champion: {verdict}")
        else:
            failures.append(f"worse than the champion: {verdict} (tolerance {config.macro_f1_tolerance})")
    return PromotionDecision(promote=not failures, reasons=failures + passes)
