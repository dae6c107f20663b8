#!/usr/bin/env python3
"""Fill the generated blocks of README.md and docs/ (result tables, worked examples, benchmark
printouts) from the repository's own files, so they are never typed in or copied.

A block is two marker lines around generated text:

    <!-- figures/table1.md -->
    ...the file's contents...
    <!-- /figures/table1.md -->

`python scripts/readme_tables.py` rewrites every block from its file; `--check` only says which
blocks differ from their files, and which numbers quoted in prose are not found in the sources
their `<!-- numbers: … -->` marker names (`scripts/doc_numbers.py`); exit 1 on either. A path
is relative to the repository root; a file that is not Markdown (a rule file, a benchmark's
printout) is shown as a fenced code block.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import doc_numbers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = (
    "README.md",
    "docs/results.md",
    "docs/ablations.md",
    "docs/own-checkpoints.md",
    "docs/speed.md",
    "docs/configuration.md",
)
FENCE = {".smk": "python", ".yaml": "yaml", ".py": "python", ".txt": "text"}
BLOCK = doc_numbers.BLOCK


def render(text: str, root: Path = ROOT) -> tuple[str, list[str]]:
    """The text with every block refilled, and the paths of the blocks that changed."""
    changed: list[str] = []

    def fill(match: re.Match) -> str:
        path = root / match["path"]
        if not path.is_file():
            raise SystemExit(f"README block names {match['path']}, which does not exist.")
        body = path.read_text()
        body = body if body.endswith("\n") else body + "\n"
        if path.suffix in FENCE:
            body = f"```{FENCE[path.suffix]}\n{body}```\n"
        if body != match["body"]:
            changed.append(match["path"])
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(fill, text), changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale blocks, write nothing")
    args = parser.parse_args()
    stale = 0
    for name in DOCUMENTS:
        document = ROOT / name
        text = document.read_text()
        new, changed = render(text)
        stale += len(changed)
        if args.check:
            for path in changed:
                print(f"{name}: block {path} differs from the file; run scripts/readme_tables.py")
        elif new != text:
            tmp = document.with_name(document.name + ".tmp")
            tmp.write_text(new)
            tmp.replace(document)
            print(f"{name}: refilled {', '.join(changed)}")
    if args.check:
        unfound = doc_numbers.unfound_numbers(ROOT)
        for item in unfound:
            print(item)
        stale += len(unfound)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
