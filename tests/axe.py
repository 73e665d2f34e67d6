"""axe-core (npm, pinned in tests/a11y/package.json; the test command installs it) run inside a
Playwright page: every rule axe knows for WCAG 2.x A/AA and its best practices, any impact.
axe is evaluated through the DevTools protocol, which our pages' Content-Security-Policy (no
inline scripts) does not govern, so the audited page runs under its real policy."""
from __future__ import annotations

from pathlib import Path

AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def audit(page, *, exclude: list[str] | None = None) -> list[dict]:
    """The violations axe finds on the page as it is now (its whole document), each as
    {"id", "impact", "help", "nodes": [selector, ...]}; `exclude` lists selectors to leave out."""
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: the test command installs it (npm ci in tests/a11y)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    context = {"exclude": [[selector] for selector in exclude]} if exclude else None
    found = page.evaluate(
        """async ([context, tags]) => {
            const result = await axe.run(context || document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').split('\\n').slice(0, 2).join(' '))}));
        }""", [context, TAGS])
    return found


def describe(violations: list[dict]) -> str:
    """A readable list for an assertion message."""
    return "\n".join(f"- {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"][:6])
                     for v in violations)
