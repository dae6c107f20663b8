import json
import shlex

from weights2data.config import check_references, task_finetune
from weights2data.selection import NEEDS_STORE

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


SEL = config["selection"]
POOL = SEL["pool"]
TABLE1_TASKS = config["tables"]["table1"].get("tasks") or CLASSIFICATION
TABLE2 = config["tables"].get("table2")
RUN_KEY = "{base}/{task}/{pool}/{grad}/{strategy}/{k}/{seed}"


def grad_for(strategy):
    """Strategies that need no gradients share one selection whatever the store."""
    return "main" if strategy in NEEDS_STORE else "none"


# Named gradient-store variants; ablations register more (e.g. other k, C or loss).
GRAD_VARIANTS = {"main": SEL["gradients"]}


def gradient_spec(grad):
    return GRAD_VARIANTS[grad]


def task_spec(wildcards):
    return config["tasks"][wildcards.task]


def task_dataset(wildcards):
    return dataset_path(config["tasks"][wildcards.task]["dataset"])


def run_paths(kind, base, task, strategies, k, ext):
    return [
        f"data/{kind}/{base}/{task}/{POOL}/{grad_for(s)}/{s}/{k}/{seed}.{ext}"
        for s in strategies
        for seed in SEEDS
    ]


def table1_inputs(kind, ext):
    return [
        p
        for task in TABLE1_TASKS
        for p in run_paths(kind, BASE, task, SEL["strategies"], SEL["k"], ext)
    ]


def table2_inputs(kind, ext):
    if not TABLE2:
        return []
    return [
        p
        for base in TABLE2["bases"]
        for p in run_paths(
            kind, base, TABLE2["task"], TABLE2["strategies"], TABLE2["k"], ext
        )
    ]


def expert_metrics(bases, tasks):
    return expand(
        "data/metrics/expert/{base}/{task}/{seed}.json",
        base=bases,
        task=tasks,
        seed=SEEDS,
    )


def all_expert_metrics():
    paths = expert_metrics([BASE], CLASSIFICATION)
    if TABLE2:
        paths += expert_metrics(TABLE2["bases"], [TABLE2["task"]])
    return paths


def selection_store(wildcards):
    if wildcards.grad == "none":
        return []
    return f"data/gradients/{wildcards.base}/{wildcards.task}/{wildcards.pool}/{wildcards.grad}/{wildcards.seed}"


def dataset_roles():
    """What each dataset is used for in this config (Table 3)."""
    roles = {name: [] for name in config["datasets"]}
    for name, base in config["bases"].items():
        for corpus in base.get("corpus") or []:
            roles[corpus].append(f"pretraining ({name})")
    for name, task in config["tasks"].items():
        roles[task["dataset"]].append(f"{task['type']} task ({name})")
    roles.setdefault(POOL, []).append("seed pool")
    return {
        name: {
            "source": config["datasets"][name]["source"],
            "role": "; ".join(r) or "unused",
        }
        for name, r in roles.items()
    }


def expert_tasks():
    return config["report"].get("expert_tasks") or CLASSIFICATION


def all_targets():
    targets = ["figures/experts.md", "figures/table1.md", "figures/table3.md"]
    targets += ["figures/class_balance.csv"]
    if TABLE2:
        targets.append("figures/table2.md")
    return targets
