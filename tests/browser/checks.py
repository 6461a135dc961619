"""What every page must pass at every width: no sideways scrolling, and axe-core's accessibility rules.

axe-core comes from npm (package.json; `make install` and .ci/run run `npm ci`) and is injected from
node_modules: nothing is downloaded while the tests run. Without it the tests skip the accessibility check
and say why, except under CI (CI set), where a missing axe-core fails them.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def axe_installed() -> bool:
    """Whether the axe check can run; under CI a missing axe-core fails the test that asks."""
    if AXE.exists():
        return True
    if os.environ.get("CI"):
        pytest.fail(f"axe-core is not installed ({AXE} is missing): run `npm ci` at the project's root")
    return False


def skip_without_axe() -> None:
    """Once a test's other checks passed: skip it, saying why, when axe-core could not run."""
    if not axe_installed():
        pytest.skip(f"axe-core is not installed ({AXE.relative_to(AXE.parents[2])} is missing): "
                    "`make install` or `npm ci` installs it; the accessibility checks did not run")


def sideways(page, width: int) -> str | None:
    """Why the page scrolls sideways at ``width`` CSS pixels (the widest element), or None."""
    found = page.evaluate("""(width) => {
        const doc = document.documentElement;
        const scroll = Math.max(doc.scrollWidth, document.body.scrollWidth);
        if (scroll <= width) return null;
        let widest = null, right = width;
        for (const el of document.body.querySelectorAll('*')) {
            const box = el.getBoundingClientRect();
            if (box.right > right + 0.5) { right = box.right; widest = el; }
        }
        const name = widest ? widest.tagName.toLowerCase() + (widest.id ? '#' + widest.id : '') +
            (widest.className && typeof widest.className === 'string' ? '.' + widest.className.trim().split(/\\s+/).join('.') : '') : '?';
        return `${scroll}px wide (widest: ${name}, right edge at ${Math.round(right)}px)`;
    }""", width)
    return found


def axe_violations(page) -> list[str]:
    """axe-core's violations on the page as it is now, one readable line per rule and element."""
    if not axe_installed():
        return []
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}));
    }""")
    lines = []
    for violation in result:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"    {node['target']}: {summary[:300]}")
        if len(violation["nodes"]) > 5:
            lines.append(f"    … and {len(violation['nodes']) - 5} more")
    return lines
