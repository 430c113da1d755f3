"""The core (cliproxy_mgmt/) names no provider in its code: providers are plugins.

Comments and docstrings may mention providers; names and string literals may not.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "cliproxy_mgmt"
PROVIDERS = re.compile(r"gemini|claude|anthropic|codex|openai|vertex|ampcode|\bamp\b|qwen|iflow|antigravity|aistudio|kimi|grok|\bx-?ai\b",
                       re.IGNORECASE)


def docstring_lines(source: str) -> set[int]:
    lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def provider_mentions(path: Path) -> list[str]:
    source = path.read_text()
    skip = docstring_lines(source)
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.NAME, tokenize.STRING) and tok.start[0] not in skip and PROVIDERS.search(tok.string):
            found.append(f"{path.relative_to(CORE.parent)}:{tok.start[0]}: {tok.string[:60]}")
    return found


def test_no_provider_name_in_core_code():
    found = [m for path in sorted(CORE.rglob("*.py")) for m in provider_mentions(path)]
    assert found == []
