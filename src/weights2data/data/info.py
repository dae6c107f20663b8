"""What a packaged dataset is: the registry's row type, shared by its loaders."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """What a packaged dataset is and where its files live (also the rows of "Table 3")."""

    name: str
    role: str  # "classification" or "corpus"
    package: str  # pip distribution that ships the files
    path: str  # file or folder inside the distribution (vendored: below data/vendor/)
    description: str
    num_classes: int  # 0 for unlabeled corpora
    source: str  # where the data originally comes from, citation-style
