"""The analyzer behind ``ai-analyze``, and the built-in one.

``ai-analyze`` calls an Analyzer; swap in a model-backed one (Azure OpenAI, AI Language) by
implementing the protocol. The built-in LocalTextAnalyzer is local and deterministic: text
statistics, keywords by frequency and an extractive summary (the highest-scoring sentences in
document order). It calls no AI service; the same text always gives the same result.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from jobs.text import keywords, sentences, words

AnalysisType = Literal["statistics", "keywords", "summary", "full"]


class Analyzer(Protocol):
    name: str

    def analyze(self, text: str, analysis_type: AnalysisType) -> dict[str, Any]: ...


class LocalTextAnalyzer:
    name = "local-text-v1"

    def __init__(self, keyword_count: int = 10, summary_sentences: int = 3):
        self.keyword_count = keyword_count
        self.summary_sentences = summary_sentences

    def analyze(self, text: str, analysis_type: AnalysisType) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        if analysis_type in ("statistics", "full"):
            parts["statistics"] = self.statistics(text)
        if analysis_type in ("keywords", "full"):
            parts["keywords"] = [{"term": t, "count": n} for t, n in keywords(text, self.keyword_count)]
        if analysis_type in ("summary", "full"):
            parts["summary"] = self.summary(text)
        return parts

    @staticmethod
    def statistics(text: str) -> dict[str, Any]:
        tokens = words(text)
        return {
            "characters": len(text), "words": len(tokens), "uniqueWords": len(set(tokens)),
            "sentences": len(sentences(text)),
            "averageWordLength": round(sum(map(len, tokens)) / len(tokens), 2) if tokens else 0.0,
        }

    def summary(self, text: str) -> list[str]:
        weights = dict(keywords(text, 50))
        ranked = sorted(
            enumerate(sentences(text)),
            key=lambda item: (-sum(weights.get(w, 0) for w in words(item[1])) / (len(words(item[1])) or 1), item[0]),
        )
        chosen = sorted(ranked[: self.summary_sentences])
        return [sentence[:500] for _, sentence in chosen]
