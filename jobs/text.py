"""Small, deterministic text utilities shared by the indexing and analysis job types."""

from __future__ import annotations

import re
from collections import Counter

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_TERM_LENGTH = 64

STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "did", "do", "does", "for", "from",
        "had", "has", "have", "he", "her", "his", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not",
        "of", "on", "or", "our", "she", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they",
        "this", "to", "too", "us", "was", "we", "were", "what", "when", "where", "which", "who", "will", "with",
        "would", "you", "your",
    }
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (Unicode letters, digits, underscore), longest 64 characters."""
    return [w.lower() for w in _WORD.findall(text) if len(w) <= MAX_TERM_LENGTH]


def term_counts(text: str) -> Counter[str]:
    return Counter(words(text))


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def keywords(text: str, limit: int = 10) -> list[tuple[str, int]]:
    """Most frequent non-stopwords; ties broken alphabetically so the result is deterministic."""
    counts = Counter(w for w in words(text) if w not in STOPWORDS and len(w) > 2 and not w.isdigit())
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
