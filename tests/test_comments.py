"""Comments and docstrings say why; measured results live in docs/benchmarks.md and docs/performance.md.

A module that quotes a measurement goes stale when the method moves on; it names the row of the
record instead.  The patterns catch the forms a measurement takes (before/after pairs, timings,
throughputs, correlations, speed-ups); defaults, conventions and physical constants do not match.
"""
import ast
import io
import re
import tokenize
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "gmmplat"

MEASURED = [
    re.compile(r"\d\.\d+\s*(Å\s*)?(->|→|vs\.?|against)\s*\d\.\d+"),  # a before/after pair
    re.compile(r"\d\s*ms\b"),  # a timing
    re.compile(r"\d(\.\d+)?\s*(–|-)\s*\d+(\.\d+)?\s*s\b"),  # a range of seconds
    re.compile(r"\b(took|takes)\s+(about\s+)?\d"),
    re.compile(r"images?/s\b"),
    re.compile(r"(spearman|\|ρ\|)[^.;]*\d\.\d\d", re.I),
    re.compile(r"\d(\.\d+)?\s*[x×]\s+(as long|as fast|faster|slower)"),
    re.compile(r"\bmeasured\b[^.;]*\d", re.I),
]



def comment_lines(path: Path):
    """``(line number, text)`` of every comment and docstring line of ``path``."""
    source = path.read_text()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                for offset, line in enumerate(first.value.value.splitlines()):
                    yield first.lineno + offset, line


def measured_lines():
    """``{relative path: ["line: text", ...]}`` of the comment lines that quote a measurement."""
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        hits = [f"{n}: {text.strip()}" for n, text in comment_lines(path) if any(p.search(text) for p in MEASURED)]
        if hits:
            found[str(path.relative_to(PACKAGE_DIR.parent))] = hits
    return found


def test_comments_quote_no_measurements():
    found = measured_lines()
    new = {f: hits for f, hits in found.items() if hits}
    assert not new, "measured numbers in comments (move them to docs/benchmarks.md and name its row):\n" + "\n".join(
        f"{f}:{hit}" for f, hits in new.items() for hit in hits)


def test_the_patterns_catch_a_measurement():
    """A guard for the test itself: the forms removed from the modules would be caught again."""
    for text in ("morph 0.53 -> 0.49 Å", "6.6 vs 11.7 ms forward", "took 7.6–8.1 s", "|Spearman| 0.92–0.94",
                 "torch.polar takes 2-3x as long", "120 images/s"):
        assert any(p.search(text) for p in MEASURED), text
    for text in ("σ = 1 Å", "rise 1.5 Å and 100° per residue", "(default 20 Å)", "gives a model 2 s to load"):
        assert not any(p.search(text) for p in MEASURED), text
