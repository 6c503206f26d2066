"""Policy sampler: the rules and policy text relevant to the sampled tools, bounded in size.

The domain policy (markdown) is split into paragraphs, each remembering its heading path
("Modify pending order > Modify items"). A paragraph scores for each sampled tool (write tools
counting double, since a_gt centres on writes): the tool's name written in it, and the
tool's key words (``cancel_pending_order`` -> cancel, pending, order) found in its headings
and text, rare key words counting more (inverse document frequency). The paragraphs scoring
at least ``min_score`` are kept within ``max_chars``: relevant general rules (the paragraphs
before the first section, e.g. "authenticate the user first") first, within a third of the
budget, then the best per character; the other general paragraphs fill what is left. The result is rendered in
document order under the paragraphs' headings.

Rules are the domain's :class:`~apigen_mt.domains.base.PolicyRule`\\ s whose ``tools``
intersect the sampled ones, the most specific first (a rule about one tool before a rule
about every tool), at most ``max_rules`` and ``max_rule_chars`` of descriptions. Of a rule,
only its name, ``description`` and tools reach the generator, never its check's code or
the rule module's docstring: a rule description states the policy requirement alone.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from apigen_mt.domains.base import Domain, ToolKind

_STOP = {
    "get",
    "find",
    "by",
    "details",
    "detail",
    "id",
    "ids",
    "all",
    "list",
    "the",
    "a",
    "an",
    "of",
    "to",
    "and",
    "or",
    "for",
    "with",
    "info",
    "types",
    "type",
    "search",
    "direct",
    "new",
}
_SYNONYMS = {
    "update": ("modify", "change"),
    "modify": ("change", "update"),
    "change": ("modify", "update"),
    "book": ("booking", "reserve"),
    "baggage": ("bag",),
    "send": ("offer",),
    "certificate": ("compensation", "compensate"),
    "exchange": ("exchang",),
}


@dataclass
class Paragraph:
    """One paragraph (or list) of the policy with the headings above it."""

    index: int
    headings: tuple[str, ...]
    text: str

    @property
    def title(self) -> str:
        return " > ".join(self.headings)


@dataclass
class PolicySample:
    """Relevant policy text (bounded), the sections it came from, and the relevant rules."""

    text: str
    sections: list[str] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "sections": self.sections, "rules": self.rules}


def split_policy(policy: str) -> list[Paragraph]:
    """Paragraphs of a markdown policy, each with its heading path (``#`` levels)."""
    paragraphs: list[Paragraph] = []
    headings: list[tuple[int, str]] = []
    buffer: list[str] = []

    def flush() -> None:
        text = "\n".join(buffer).strip()
        buffer.clear()
        if text:
            paragraphs.append(Paragraph(len(paragraphs), tuple(h for _, h in headings), text))

    for line in policy.splitlines():
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match:
            flush()
            level = len(match.group(1))
            headings = [(lv, h) for lv, h in headings if lv < level] + [(level, match.group(2))]
        elif not line.strip():
            flush()
        else:
            buffer.append(line)
    flush()
    return paragraphs


def _stem(word: str) -> str:
    word = word.lower()
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    return word[: max(4, len(word) - 2)] if len(word) > 4 else word


def keywords(tool_names: Iterable[str]) -> set[str]:
    """Key-word stems of tool names: ``update_reservation_baggages`` -> upda, modi, reservati, ..."""
    words: set[str] = set()
    for name in tool_names:
        for part in re.split(r"[_\W]+", name.lower()):
            if not part or part in _STOP or len(part) < 3:
                continue
            base = part[:-1] if part.endswith("s") and not part.endswith("ss") else part
            words.add(_stem(part))
            for synonym in _SYNONYMS.get(base, ()) + _SYNONYMS.get(part, ()):
                words.add(_stem(synonym))
    return words


def _hits(stem: str, text: str) -> int:
    return len(re.findall(rf"\b{re.escape(stem)}\w*", text, flags=re.IGNORECASE))


class PolicySampler:
    """Picks the policy paragraphs and rules relevant to a set of tools."""

    def __init__(
        self,
        domain: Domain,
        *,
        max_chars: int = 3000,
        max_rules: int = 8,
        max_rule_chars: int = 2500,
        min_score: float = 1.0,
    ) -> None:
        self.domain = domain
        self.min_score = min_score
        self.max_chars, self.max_rules, self.max_rule_chars = max_chars, max_rules, max_rule_chars
        self.paragraphs = split_policy(domain.policy or "")
        self._idf_cache: dict[str, float] = {}
        self._samples: dict[tuple[str, ...], PolicySample] = {}
        self._terms: dict[tuple[int, str], float] = {}
        self._writes = {t.name for t in domain.tools if t.kind == ToolKind.WRITE}

    def _idf(self, stem: str) -> float:
        """Rarer key words count more ("cancel" beats "order" in a retail policy)."""
        if stem not in self._idf_cache:
            df = sum(1 for p in self.paragraphs if _hits(stem, p.text) or _hits(stem, p.title))
            self._idf_cache[stem] = math.log((len(self.paragraphs) + 1) / (df + 0.5))
        return max(self._idf_cache[stem], 0.1)

    def score(self, paragraph: Paragraph, tools: list[str]) -> float:
        """Relevance of one paragraph to ``tools``, write tools counting double.

        Per tool: 5 per literal mention of its name, plus its key words found in the
        paragraph's headings (x2) and text (up to 2 hits), weighted by rarity and normalised
        by the tool's total key-word weight (at least 1.5, so a tool with one common key
        word such as ``get_order`` does not match every paragraph about orders), times the
        share of that weight found. "Cancel pending order" thus matches
        ``cancel_pending_order`` fully, "Modify pending order" only partly, "Return
        delivered order" hardly. General paragraphs before the first section get 0.5.
        """
        score = sum(self._tool_term(paragraph, tool) for tool in tools)
        if len(paragraph.headings) <= 1:  # the preamble: general rules that apply to everything
            score += 0.5
        return score

    def _tool_term(self, paragraph: Paragraph, tool: str) -> float:
        """One tool's share of :meth:`score` (memoized: the policy and the tools are fixed)."""
        key = (paragraph.index, tool)
        cached = self._terms.get(key)
        if cached is not None:
            return cached
        text = paragraph.text
        headings = " ".join(paragraph.headings[1:])
        tool_stems = keywords([tool])
        weight_all = sum(self._idf(stem) for stem in tool_stems)
        found = [stem for stem in tool_stems if _hits(stem, headings) or _hits(stem, text)]
        match = sum(
            self._idf(stem) * (2.0 * bool(_hits(stem, headings)) + min(2, _hits(stem, text)))
            for stem in found
        )
        coverage = sum(self._idf(stem) for stem in found) / (weight_all or 1.0)
        total = max(1.5, weight_all)
        weight = 2.0 if tool in self._writes else 1.0
        term = self._terms[key] = weight * (5.0 * text.count(tool) + coverage * match / total)
        return term

    def sample(self, tools: Iterable[str]) -> PolicySample:
        """The relevant text and rules for ``tools``: a function of the tools alone (no randomness;
        the context's variety comes from which tools were sampled)."""
        tools = list(dict.fromkeys(tools))
        key = tuple(tools)
        if key not in self._samples:  # a pure function of the tools: scored once per tool set
            self._samples[key] = self._sample(tools)
        return copy.deepcopy(self._samples[key])

    def _sample(self, tools: list[str]) -> PolicySample:
        scored = [(self.score(p, tools), p) for p in self.paragraphs]

        def density(item: tuple[float, Paragraph]) -> tuple[float, int]:
            # best relevance per character first: a long marginal paragraph must not crowd out key ones
            return (-item[0] / (1.0 + len(item[1].text) / 600.0), item[1].index)

        def cost(paragraph: Paragraph) -> int:
            return len(paragraph.text) + len(paragraph.title) + 8  # headings rendered once per section

        relevant = sorted((item for item in scored if item[0] >= self.min_score), key=density)
        # relevant general rules (the preamble, e.g. "authenticate the user first") go first,
        # within a third of the budget
        first, reserved = [], 0
        for item in relevant:
            if len(item[1].headings) <= 1 and reserved + cost(item[1]) <= self.max_chars // 3:
                first.append(item)
                reserved += cost(item[1])
        rest = [item for item in relevant if item not in first]
        general = sorted(  # the other general rules fill what budget is left
            (item for item in scored if item[0] < self.min_score and len(item[1].headings) <= 1), key=density
        )
        chosen: list[Paragraph] = []
        used = 0
        for _, paragraph in first + rest + general:
            if used + cost(paragraph) > self.max_chars:
                continue
            chosen.append(paragraph)
            used += cost(paragraph)
        chosen.sort(key=lambda p: p.index)
        text, sections = self._render(chosen)
        return PolicySample(text=text, sections=sections, rules=self.rules(tools))

    def _render(self, paragraphs: list[Paragraph]) -> tuple[str, list[str]]:
        lines: list[str] = []
        sections: list[str] = []
        current: tuple[str, ...] | None = None
        for paragraph in paragraphs:
            if paragraph.headings != current:
                current = paragraph.headings
                if paragraph.title:
                    sections.append(paragraph.title)
                    lines.append(f"## {paragraph.title}")
            lines.append(paragraph.text)
        text = "\n\n".join(lines)
        return text[: self.max_chars], sections

    def rules(self, tools: Iterable[str]) -> list[dict[str, Any]]:
        """The rules about any of ``tools``, most specific first, within the limits."""
        wanted = set(tools)
        candidates = []
        for order, rule in enumerate(self.domain.policy_rules):
            about = set(rule.tools)
            if about and not about & wanted:
                continue
            specificity = len(about & wanted) / len(about) if about else 0.0
            candidates.append((-specificity, order, rule))
        candidates.sort(key=lambda item: (item[0], item[1]))
        rules, used = [], 0
        for _, _, rule in candidates:
            if len(rules) >= self.max_rules:
                break
            if used + len(rule.description) > self.max_rule_chars:
                continue
            used += len(rule.description)
            rules.append({"name": rule.name, "description": rule.description, "tools": list(rule.tools)})
        return rules
