"""Decisions (`POST /decisions`) for the stub: one answer per question, of the kind it asks
(predicate, choice, score), with Responses-style usage that counts cache writes."""

from __future__ import annotations

from typing import Any

from ._stub_common import CallSpec, Reply, count_words, make_usage, text_of

__all__ = ["decision_reply"]


def _answer(question: Any) -> Any:
    from openai.types import decision as d

    q = question if isinstance(question, dict) else {}
    name, kind = q.get("name"), q.get("type")
    if kind == "choice":
        options = [o if isinstance(o, (str, bool)) else str(o) for o in q.get("choices") or ["yes"]]
        chosen = [d.AnswerAnswerResourceChoiceProbability(probability=1.0, value=options[0])]
        return d.AnswerAnswerResourceChoice(
            type="choice", name=name, choice=options[0], confidence=0.9, probabilities=chosen
        )
    if kind == "score":
        scored = [d.AnswerAnswerResourceScoreProbability(label="3", probability=1.0, value=3)]
        return d.AnswerAnswerResourceScore(
            type="score", name=name, score=3.0, confidence=0.8, probabilities=scored
        )
    return d.AnswerAnswerResourcePredicate(type="predicate", name=name, probability=0.75)


def decision_reply(spec: CallSpec) -> Reply:
    """The SDK's own `Decision` (imported here only: a client calling this route has it)."""
    from openai.types import decision as d

    body = spec.body
    asked = body.get("questions")
    questions: list[Any] = asked if isinstance(asked, list) else []
    words = count_words(text_of(body.get("input"))) + sum([count_words(text_of(q)) for q in questions])
    usage = make_usage(words + 5, 2 * max(1, len(questions)), spec.usage)
    writes = int(spec.usage.get("cache_write_tokens", 0))
    answer = d.Decision(
        answers=[_answer(q) for q in questions],
        model=spec.model,
        usage=d.Usage(
            input_tokens=usage.prompt,
            input_tokens_details=d.UsageInputTokensDetails(
                cache_write_tokens=writes, cached_tokens=usage.cached
            ),
            output_tokens=usage.completion,
            output_tokens_details=d.UsageOutputTokensDetails(reasoning_tokens=usage.reasoning),
            total_tokens=usage.total,
        ),
    )
    return Reply(json=answer.to_dict())
