"""The layout's rules that the import contract (`lint-imports`, run by .ci/run) cannot see."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lms_stripe_plugin"
#: The edges: each owns the transactions of the work it starts.
EDGES = ("views", "sync", "cli.py", "core/jobs.py")
#: Services, the Stripe boundary, the host's signal receivers and the kernel: they work in the caller's
#: transaction and never end it.
NEVER_COMMIT = ("accounts", "billing", "messages", "refunds", "shop", "web", "hooks", "gateway", "core")
#: The one reason for an import inside a function: an optional dependency (the ``twilio`` extra, the host's
#: Flask-Mail), imported only when it is used, and saying so on its line.
OPTIONAL_DEPENDENCIES = ("twilio", "flask_mail")
OPTIONAL = "# optional dependency"


def _modules(*parts) -> list[Path]:
    found = []
    for part in parts:
        path = PACKAGE / part
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def _services() -> list[Path]:
    edges = set(_modules(*EDGES))
    return [p for p in _modules(*NEVER_COMMIT) if p not in edges]


def _production() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if not p.relative_to(PACKAGE).parts[0] in ("sandbox", "demo", "migrations")]


def _calls(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    return [f"{path.relative_to(PACKAGE)}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names]


def test_services_hooks_and_the_kernel_never_commit_or_roll_back():
    offenders = [where for path in _services() for where in _calls(path, {"commit", "rollback"})]
    assert offenders == []


def test_the_rule_above_covers_every_production_module():
    covered = set(_services()) | set(_modules(*EDGES))
    top = {p for p in _production() if len(p.relative_to(PACKAGE).parts) == 1}
    assert set(_production()) - covered - top == set()


def test_the_edges_do_own_transactions():
    """The check above must be able to fail: the edges' commits are found the same way."""
    assert [where for path in _modules(*EDGES) for where in _calls(path, {"commit"})]


@pytest.mark.parametrize("path", [p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_inside_a_function(path):
    """Imports at module level show every dependency to the reader and to the import contract; but for an
    optional dependency, which says so."""
    source = path.read_text()
    lines = source.splitlines()
    inline = [f"{node.lineno}: {ast.unparse(sub)}" for node in ast.walk(ast.parse(source))
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))
              and not _optional(sub, lines[sub.lineno - 1])]
    assert inline == []


def _optional(node, line: str) -> bool:
    names = [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else \
        [alias.name for alias in node.names] if isinstance(node, ast.Import) else [""]
    return OPTIONAL in line and all(name.split(".")[0] in OPTIONAL_DEPENDENCIES for name in names)
