"""Fingerprints of the package code that a pipeline step runs.

Snakemake tracks no Python code behind a shell rule, so each rule passes its step's fingerprint
as a ``params:`` entry: editing a function reruns exactly the steps that import it, directly or
through other package modules, and nothing else. The fingerprint hashes the syntax tree (without
docstrings), so a comment or docstring edit reruns nothing.

Standard library only: the Snakefile loads this file by path, so it works in a Snakemake
environment that lacks the package's dependencies.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name
# what every command runs through: the module-level imports of the CLI's entry module
RUNNER = "cli"
STEPS = "steps"  # the package of step functions, one per subcommand


def step_fingerprint(command: str, package_dir: Path = PACKAGE_DIR) -> str:
    """12 hex digits naming the code behind ``weights2data <command>``."""
    return _fingerprint(command, package_dir.resolve())


@cache
def _fingerprint(command: str, package_dir: Path) -> str:
    graph = _graph(package_dir)
    module, nodes = graph.entry(command)
    imports = set().union(*(graph.node_imports(module, n) for n in nodes))
    seen = graph.closure(imports | graph.top_imports(module) | graph.top_imports(RUNNER))
    digest = hashlib.sha256("".join(_canonical(n) for n in nodes).encode())
    for name in sorted(seen):
        digest.update(f"\0{name}\0{graph.canonical(name)}".encode())
    return digest.hexdigest()[:12]


@cache
def _graph(package_dir: Path) -> _ImportGraph:
    return _ImportGraph(package_dir)


def _canonical(node: ast.AST) -> str:
    """The syntax tree without docstrings: what the code does, not how it is commented."""
    _strip_docstrings(node)
    return ast.dump(node, annotate_fields=False)


def _strip_docstrings(node: ast.AST) -> None:
    """Drop the docstring of ``node`` and of every statement block under it (in place);
    only statements are visited, which keeps a job's fingerprint cheap."""
    for field in ("body", "orelse", "finalbody", "handlers"):
        block = getattr(node, field, None)
        if not isinstance(block, list):
            continue
        if (
            field == "body"
            and isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and block
            and isinstance(block[0], ast.Expr)
            and isinstance(block[0].value, ast.Constant)
            and isinstance(block[0].value.value, str)
        ):
            block = node.body = block[1:] or [ast.Pass()]
        for child in block:
            if isinstance(child, ast.stmt | ast.excepthandler):
                _strip_docstrings(child)


def _used_definitions(defs: dict[str, ast.AST], start: str) -> list[ast.AST]:
    """``start`` and the module's definitions it names, transitively, in a fixed order."""
    used, todo = [], [start]
    while todo:
        name = todo.pop()
        if name in used:
            continue
        used.append(name)
        names = {  # names read (not a dataclass field's own name)
            n.id
            for n in ast.walk(defs[name])
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
        }
        todo.extend(sorted(n for n in names & set(defs) if n not in used))
    return [defs[name] for name in sorted(used)]


class _ImportGraph:
    """The package's modules (dotted names relative to the package) and who imports whom."""

    def __init__(self, package_dir: Path) -> None:
        self.root = package_dir
        self.files = {
            self._name(path): path
            for path in sorted(package_dir.rglob("*.py"))
            if "__pycache__" not in path.parts
        }
        self._trees: dict[str, ast.Module] = {}
        self._canonical: dict[str, str] = {}

    def _name(self, path: Path) -> str:
        parts = list(path.relative_to(self.root).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    def tree(self, name: str) -> ast.Module:
        if name not in self._trees:
            self._trees[name] = ast.parse(self.files[name].read_text(), str(self.files[name]))
        return self._trees[name]

    def canonical(self, name: str) -> str:
        """The module's canonical form (stripping docstrings changes no import of its tree)."""
        if name not in self._canonical:
            self._canonical[name] = _canonical(self.tree(name))
        return self._canonical[name]

    def entry(self, command: str) -> tuple[str, list[ast.AST]]:
        """The steps module whose function runs a subcommand (``<command>`` with ``-`` as
        ``_``), and that function with every definition of its module it uses, transitively
        (its args dataclass, helpers)."""
        wanted = command.replace("-", "_")
        for name in self.files:
            if not name.startswith(STEPS + "."):
                continue
            defs = {
                node.name: node
                for node in self.tree(name).body
                if isinstance(node, ast.FunctionDef | ast.ClassDef)
            }
            if wanted in defs:
                return name, _used_definitions(defs, wanted)
        raise LookupError(f"no step function {wanted} in {self.root / STEPS} for {command!r}")

    def _imports(self, module: str, nodes: list[ast.AST]) -> set[str]:
        package = module if self.files[module].name == "__init__.py" else module.rpartition(".")[0]
        found: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                base = self._resolve(package, node.module, node.level)
                if base is None:
                    continue
                found.add(base)
                found |= {f"{base}.{a.name}".strip(".") for a in node.names}
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    head, _, rest = alias.name.partition(".")
                    if head == PACKAGE:
                        found.add(rest)
        return {name for name in found if name in self.files}

    def _resolve(self, package: str, module: str | None, level: int) -> str | None:
        if level == 0:
            head, _, rest = (module or "").partition(".")
            return rest if head == PACKAGE else None
        parts = package.split(".") if package else []
        parts = parts[: len(parts) - (level - 1)] if level > 1 else parts
        return ".".join([*parts, *(module.split(".") if module else [])])

    def node_imports(self, module: str, node: ast.AST) -> set[str]:
        return self._imports(module, list(ast.walk(node)))

    def top_imports(self, module: str) -> set[str]:
        return self._imports(module, list(self.tree(module).body))

    def closure(self, start: set[str]) -> set[str]:
        """Every module reachable from ``start``, counting imports inside functions too."""
        seen, todo = set(), list(start)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo.extend(self._imports(name, list(ast.walk(self.tree(name)))) - seen)
        return seen
