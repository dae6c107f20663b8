"""Where each artifact lives: one path template per kind, filled from its coordinates.

The rules build every path here (the templates double as Snakemake patterns), and pass the
coordinates to the steps that report on the files; no step reads a coordinate back out of a
path. Standard library only, like ``codeprint``: the Snakefile imports it.
"""

from __future__ import annotations

from collections.abc import Sequence

# the coordinates of one run: base model, expert task, seed pool, store variant, strategy, K
RUN = "{base}/{task}/{pool}/{grad}/{strategy}/{k}/{seed}"

TEMPLATES = {
    "dataset": "data/datasets/{dataset}.parquet",
    "base": "data/models/base/{base}",
    "expert": "data/models/expert/{base}/{task}/{seed}",
    "expert_metrics": "data/metrics/expert/{base}/{task}/{seed}.json",
    "pool": "data/pools/{pool}/{seed}.parquet",
    "labels": "data/labels/{base}/{task}/{pool}/{seed}.parquet",
    "gradients": "data/gradients/{base}/{task}/{pool}/{grad}/{seed}",
    "selections": f"data/selections/{RUN}.parquet",
    "retrain": f"data/retrain/{RUN}.json",
    "similarity": f"data/similarity/{RUN}.json",
    "replacement": f"data/ablations/replacement/{RUN}.json",
    "retrain_optimizer": f"data/ablations/optimizer/{{optimizer}}/retrain/{RUN}.json",
    "pool_embeddings": "data/embeddings/pools/{pool}/{seed}.npy",
    "pool_union_embeddings": "data/embeddings/pool_union/{pool}.npy",
    "pool_union_texts": "data/embeddings/pool_union/{pool}.parquet",
    "truth_embeddings": "data/embeddings/truth/{task}/{seed}.npy",
    "truth_union_embeddings": "data/embeddings/truth_union/{task}.npy",
    "truth_union_texts": "data/embeddings/truth_union/{task}.parquet",
    "regime": "data/diagnostics/regime/{base}/{task}/{grad}/{seed}.json",
    "regime_sum": "data/diagnostics/regime/{base}/{task}/{grad}/{seed}.npy",
    "trunk": "data/trunk/{base}/{dataset}/{trunk}.safetensors",
}

# a trunk cache's name: its regime, encoding, length, truncation and storage dtype
TRUNK_FIELDS = ("regime", "encoding", "max_length", "truncate", "dtype")


def trunk_name(
    regime: str,
    encoding: str,
    max_length: int | Sequence[int],
    truncate: str | Sequence[str],
    dtype: str,
) -> str:
    """e.g. ``top1.classification.32.left.float32`` (no ':' in a file name); a cache holding
    several encodings of its texts joins theirs with '+': ``….64+128.right+left.…``."""
    lengths = [max_length] if isinstance(max_length, int) else list(max_length)
    sides = [truncate] if isinstance(truncate, str) else list(truncate)
    if len(lengths) != len(sides):
        raise ValueError(f"{len(lengths)} lengths for {len(sides)} truncation sides")
    joined = ["+".join(map(str, lengths)), "+".join(sides)]
    return ".".join([regime.replace(":", ""), encoding, *joined, dtype])


def trunk_spec(name: str) -> dict:
    """The fields of a trunk cache name, back as the ``trunk-cache`` step's spec (several
    encodings: ``encodings``, a list of [max_length, truncate])."""
    parts = name.split(".")
    if len(parts) != len(TRUNK_FIELDS):
        raise ValueError(f"{name!r} is not a trunk cache name ({'.'.join(TRUNK_FIELDS)})")
    spec = dict(zip(TRUNK_FIELDS, parts, strict=True))
    spec["regime"] = spec["regime"].replace("top", "top:")
    lengths, sides = spec["max_length"].split("+"), spec["truncate"].split("+")
    if len(lengths) != len(sides):
        raise ValueError(f"{name!r}: {len(lengths)} lengths for {len(sides)} truncation sides")
    if len(lengths) == 1:
        spec["max_length"] = int(lengths[0])
        return spec
    del spec["max_length"], spec["truncate"]
    spec["encodings"] = [[int(n), side] for n, side in zip(lengths, sides, strict=True)]
    return spec


def path_of(kind: str, **coordinates: object) -> str:
    """The file of one artifact, e.g. ``path_of("retrain", base=…, task=…, …, seed=0)``."""
    try:
        template = TEMPLATES[kind]
    except KeyError:
        raise KeyError(f"no path template {kind!r}; known: {', '.join(TEMPLATES)}") from None
    return template.format(**coordinates)
