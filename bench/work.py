"""The job every end-to-end side runs: read a document blob, analyse it, write the analysis blob.

The same storage operations on every side (the blob's properties, its download, an overwrite of
the output blob) and the same parse (the app's LocalTextAnalyzer, ``statistics``), so the sides
differ only in how the job gets to the work and how its outcome is recorded.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jobs.analyzer import AnalysisType, LocalTextAnalyzer

ANALYZER = LocalTextAnalyzer()
ANALYSIS_TYPE: AnalysisType = "statistics"
_SENTENCES = (
    "Queue triggered workers claim each job with a conditional write before they run it.",
    "Every status transition is recorded on the job's entity together with its bounded history.",
    "A message that outlives a crashed worker comes back after its visibility timeout.",
    "Outcome events carry deterministic identifiers so that consumers can drop duplicates.",
    "The benchmark compares the application with the fewest storage operations that do the same.",
)


def document_text(size: int = 4096) -> str:
    """A deterministic English text of about ``size`` characters (the job's input document)."""
    parts: list[str] = []
    length = 0
    i = 0
    while length < size:
        sentence = _SENTENCES[i % len(_SENTENCES)]
        parts.append(sentence)
        length += len(sentence) + 1
        i += 1
    return " ".join(parts)


def analysis_of(subject: str, text: str) -> dict[str, Any]:
    """The output document (what ai-analyze writes, for one analysis type)."""
    return {"documentId": subject, "analysisType": ANALYSIS_TYPE, "analyzer": ANALYZER.name,
            "sourceSha256": hashlib.sha256(text.encode()).hexdigest(), **ANALYZER.analyze(text, ANALYSIS_TYPE)}


def output_name(subject: str, tag: str) -> str:
    """The output blob's name under the tenant's folder of the analysis container."""
    return f"{subject}/{tag}.json"


def encode_json(value: Any) -> bytes:
    """As the app's TenantFiles.write_json encodes it."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2).encode()


def summary_of(analysis: dict[str, Any]) -> dict[str, Any]:
    return {"analysisType": ANALYSIS_TYPE, "words": analysis["statistics"]["words"]}
