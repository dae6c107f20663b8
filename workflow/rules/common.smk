import json
import shlex

from weights2data.config import check_references, task_finetune

check_references(config)

ENV = "../../envs/weights2data.yaml"
SEEDS = config["seeds"]
BASE = config["base"]
CLASSIFICATION = [
    t for t, s in config["tasks"].items() if s["type"] == "classification"
]


wildcard_constraints:
    seed=r"\d+",
    base=r"[A-Za-z0-9_.-]+",
    task=r"[A-Za-z0-9_.-]+",
    dataset=r"[A-Za-z0-9_.-]+",


def as_json(obj):
    """A config slice as one shell-quoted JSON argument (params changes trigger reruns)."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def dataset_path(name):
    return f"data/datasets/{name}.parquet"


def base_corpus(wildcards):
    spec = config["bases"][wildcards.base]
    return (
        [dataset_path(d) for d in spec.get("corpus") or []]
        if spec["kind"] == "pretrain"
        else []
    )


def expert_tasks():
    return config["report"].get("expert_tasks") or CLASSIFICATION


def all_targets():
    return ["figures/experts.md"]
