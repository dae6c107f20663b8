import json
import shlex
import sys
from pathlib import Path

from weights2data.ablation_steps import variant_name
from weights2data.codeprint import step_fingerprint
from weights2data.config import check_references, task_finetune
from weights2data.paths import TEMPLATES as PATHS, path_of, trunk_name, trunk_spec
from weights2data.strategies import NEEDS_STORE

check_references(config)

# the conda environment of every job, as an absolute path since rule files live at two depths
ENV = str(Path(workflow.basedir, "envs", "weights2data.yaml"))

# Jobs run the `weights2data` of the environment that runs Snakemake, activated or not. With
# --use-conda (or a container) the job's own environment provides it instead.
_ENV_BIN = Path(sys.executable).parent
if (
    _ENV_BIN / "weights2data"
).exists() and not workflow.deployment_settings.deployment_method:
    shell.prefix(
        f'set -euo pipefail; export PATH={shlex.quote(str(_ENV_BIN))}:"$PATH"; '
    )
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


def code_of(command):
    """The fingerprint of the package code behind `weights2data <command>` (a params entry:
    Snakemake reruns a step whose code changed; comments and docstrings do not count).
    """
    return step_fingerprint(command)


def as_json(obj):
    """A config slice as one shell-quoted JSON argument (params changes trigger reruns)."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def dataset_path(name):
    return path_of("dataset", dataset=name)


def base_corpus(wildcards):
    """What the base is made from: its corpus datasets, or the files of a local HF folder (so
    that new weights there remake the base and everything after it)."""
    spec = config["bases"][wildcards.base]
    if spec["kind"] == "pretrain":
        return [dataset_path(d) for d in spec.get("corpus") or []]
    if spec["kind"] == "hf_folder":
        folder = Path(spec["path"])
        return (
            sorted(str(f) for f in folder.iterdir() if f.is_file())
            if folder.is_dir()
            else []
        )
    return []


def user_files(wildcards):
    """A dataset's own file (``local:<path>``): an input, so that editing it reruns the dataset
    and what depends on it."""
    source = config["datasets"][wildcards.dataset]["source"]
    return [source.removeprefix("local:")] if source.startswith("local:") else []


SEL = config["selection"]
POOL = SEL["pool"]
TABLE1_TASKS = config["tables"]["table1"].get("tasks") or CLASSIFICATION
TABLE2 = config["tables"].get("table2")
# Table 2's seeds: its own list, else the config's
TABLE2_SEEDS = (TABLE2 or {}).get("seeds") or SEEDS
RUN_KEY = "{base}/{task}/{pool}/{grad}/{strategy}/{k}/{seed}"


def grad_for(strategy):
    """Strategies that need no gradients share one selection whatever the store."""
    return "main" if strategy in NEEDS_STORE else "none"


# Named gradient-store variants; ablations register more (e.g. other k, C or loss).
GRAD_VARIANTS = {"main": SEL["gradients"]}


def gradient_spec(grad):
    return GRAD_VARIANTS[grad]


def grad_variant(**overrides):
    """Name of the store with the main gradient spec + overrides, registered on first use.

    Identical specs get one name, hence one store (C=1 is "main", not a copy of it).
    """
    spec = dict(SEL["gradients"], **overrides)
    name = variant_name(SEL["gradients"], spec)
    GRAD_VARIANTS.setdefault(name, spec)
    return name


def grad_of(strategy, variant="main"):
    """The store a strategy reads: the variant, or "none" when it needs no gradients."""
    return variant if strategy in NEEDS_STORE else "none"


def run_path(kind, task, pool, grad, strategy, k, seed, base=BASE, **more):
    """One run's file (weights2data.paths), e.g. run_path("retrain", …)."""
    coords = dict(base=base, task=task, pool=pool, grad=grad, strategy=strategy, k=k)
    return path_of(kind, seed=seed, **coords, **more)


def task_spec(wildcards):
    return TASKS[wildcards.task]


def finetune_of(task):
    """A task's finetune settings: the global section with the task's overrides."""
    return task_finetune({"finetune": config["finetune"], "tasks": TASKS}, task)


def task_dataset(wildcards):
    return dataset_path(TASKS[wildcards.task]["dataset"])


def run_paths(kind, base, task, strategies, k, seeds=SEEDS):
    return [
        run_path(kind, task, POOL, grad_for(s), s, k, seed, base)
        for s in strategies
        for seed in seeds
    ]


def table1_inputs(kind):
    return [
        p
        for task in TABLE1_TASKS
        for p in run_paths(kind, BASE, task, SEL["strategies"], SEL["k"])
    ]


def table2_inputs(kind):
    if not TABLE2:
        return []
    return [
        p
        for base in TABLE2["bases"]
        for p in run_paths(
            kind, base, TABLE2["task"], TABLE2["strategies"], TABLE2["k"], TABLE2_SEEDS
        )
    ]


def expert_metrics(bases, tasks, seeds=SEEDS):
    return expand(
        PATHS["expert_metrics"],
        base=bases,
        task=tasks,
        seed=seeds,
    )


def all_expert_metrics():
    paths = expert_metrics([BASE], CLASSIFICATION)
    if TABLE2:
        paths += expert_metrics(TABLE2["bases"], [TABLE2["task"]], TABLE2_SEEDS)
    return paths


def gradient_inputs(wildcards):
    """The models, pseudolabelled pool and task table a store (or one shard of it) reads."""
    return {
        "base": path_of("base", **wildcards),
        "final": path_of("expert", **wildcards),
        "labels": path_of("labels", **wildcards),
        "dataset": task_dataset(wildcards),
        "trunk": trunk_caches(wildcards),
    }


def selection_store(wildcards):
    if wildcards.grad == "none":
        return []
    return path_of("gradients", **wildcards)


def dataset_roles():
    """What each dataset is used for in this config (Table 3)."""
    roles = {name: [] for name in config["datasets"]}
    for name, base in config["bases"].items():
        for corpus in base.get("corpus") or []:
            roles[corpus].append(f"pretraining ({name})")
    for name, task in config["tasks"].items():
        roles[task["dataset"]].append(f"{task['type']} task ({name})")
    roles.setdefault(POOL, []).append("seed pool")
    for pool in ablation_pools():
        roles.setdefault(pool, []).append("seed pool (ablation T4)")
    return {
        name: {
            "source": config["datasets"][name]["source"],
            "role": "; ".join(r) or "unused",
            "path": dataset_path(name),
        }
        for name, r in roles.items()
    }


def expert_coordinates(bases, tasks, seeds=SEEDS):
    """{metrics file: base, task, seed} of each expert, for the tables (in expand's order)."""
    return {
        path_of("expert_metrics", base=b, task=t, seed=s): {
            "base": b,
            "task": t,
            "seed": s,
        }
        for b in bases
        for t in tasks
        for s in seeds
    }


def selection_coordinates():
    """{selection file: task, strategy, seed} of Table 1's selections (class balance)."""
    return {
        run_path("selections", task, POOL, grad_for(s), s, SEL["k"], seed): {
            "task": task,
            "strategy": s,
            "seed": seed,
        }
        for task in TABLE1_TASKS
        for s in SEL["strategies"]
        for seed in SEEDS
    }


def expert_tasks():
    return config["report"].get("expert_tasks") or CLASSIFICATION


def all_targets():
    targets = ["figures/experts.md", "figures/table1.md", "figures/table3.md"]
    targets += [
        "figures/class_balance.csv",
        "figures/diagnostics.md",
        "figures/metrics.json",
    ]
    if TABLE2:
        targets += ["figures/table2.md", "figures/diagnostics_table2.md"]
    return targets + ABLATION_TARGETS


# ---- regime diagnostics (workflow/rules/diagnostics.smk)
def regime_file(base, task, grad, seed, ext):
    """One expert's regime diagnostics: .json (numbers) or .npy (S_true)."""
    kind = "regime" if ext == "json" else "regime_sum"
    return path_of(kind, base=base, task=task, grad=grad, seed=seed)


def diagnostics_spec(bases, tasks, strategies, k, group, seeds=SEEDS):
    """The files of the diagnostics table: each expert's regime, each run's selection."""
    experts, runs = [], []
    for base in bases:
        for task in tasks:
            for seed in seeds:
                regime = regime_file(base, task, "main", seed, "json")
                name = task if group == "task" else base
                experts.append({"group": name, "seed": seed, "regime": regime})
                for s in strategies:
                    keys = (task, POOL, grad_of(s), s, k, seed)
                    runs.append(
                        {
                            "group": name,
                            "strategy": s,
                            "seed": seed,
                            "selection": run_path("selections", *keys, base=base),
                            "retrain": run_path("retrain", *keys, base=base),
                            "store": path_of(
                                "gradients",
                                base=base,
                                task=task,
                                pool=POOL,
                                grad="main",
                                seed=seed,
                            ),
                            "regime": regime,
                            "truth_sum": regime_file(base, task, "main", seed, "npy"),
                        }
                    )
    return {"group": group, "experts": experts, "runs": runs}


def spec_files(spec):
    """Every file a diagnostics spec names (the inputs of its table rule)."""
    files = {e["regime"] for e in spec["experts"]}
    for run in spec["runs"]:
        files.update(run[key] for key in ("selection", "retrain", "store", "truth_sum"))
    return sorted(files)


# ---- ablations (workflow/rules/ablation_*.smk; docs/ablations.md, "How to add an ablation")
ABL = config["ablations"]
# Each enabled ablation registers itself (register_ablation); `rule all` asks for its table.
ABLATION_TARGETS = []
ABLATIONS = {}


def register_ablation(name, kind, spec, inputs):
    """One ablation for the ablation_report rule; its report kind (`weights2data ablation-report
    --kind`), run list and input files; its caption is workflow/report/ablation_<name>.rst.
    A disabled ablation (no runs) is skipped."""
    if spec["runs"]:
        ABLATIONS[name] = {"kind": kind, "spec": spec, "inputs": inputs}
        ABLATION_TARGETS.append(f"figures/ablations/{name}.md")


def ablation_caption(wildcards):
    """The caption of one ablation's figure in the HTML report."""
    return Path(
        workflow.basedir, "workflow", "report", f"ablation_{wildcards.ablation}.rst"
    )


def ablation(name):
    """The config section of one ablation, or None when it is disabled."""
    section = ABL[name]
    return section if section["enabled"] else None


def ablation_seeds(section):
    """A section's own seeds, else `ablations.seeds`, else the top-level seeds."""
    return section.get("seeds") or ABL.get("seeds") or SEEDS


def ablation_k(section):
    """A section's own K, else `ablations.k`, else `selection.k`."""
    return section.get("k") or ABL.get("k") or SEL["k"]


def ablation_task():
    """The classification task of the single-task ablations."""
    task = ABL.get("task") or TABLE1_TASKS[0]
    if config["tasks"].get(task, {}).get("type") != "classification":
        raise ValueError(
            f"ablations.task {task!r} is not a classification task of `tasks`."
        )
    return task


def ablation_pools():
    """Extra seed pools of the seed-distribution ablation (T4)."""
    section = ablation("seed_pools")
    return [p for p in (section["pools"] or []) if p != POOL] if section else []


def optimizer_task():
    """The SFT task of the optimizer ablation (T5): its own, Table 2's, or the first one."""
    sft = [t for t, s in config["tasks"].items() if s["type"] == "sft"]
    return ABL["optimizer"]["task"] or (
        TABLE2["task"] if TABLE2 else (sft or [None])[0]
    )


def optimizer_derived_tasks():
    """T5's experts trained with another optimizer: task "<task>-<optimizer>" is the task
    with that optimizer's settings merged into its finetune overrides."""
    section, task = ablation("optimizer"), optimizer_task()
    if not section or task is None:
        return {}
    spec, derived = config["tasks"][task], {}
    for name, overrides in section["optimizers"].items():
        if dict(task_finetune(config, task), **overrides) != task_finetune(
            config, task
        ):
            finetune = dict(spec.get("finetune") or {}, **overrides)
            derived[f"{task}-{name}"] = dict(spec, finetune=finetune)
    return derived


# Every task that jobs can name: the config's, then the ones the ablations derive (the config
# itself is never changed, so what a function sees does not depend on the include order).
DERIVED_TASKS = {name: optimizer_task() for name in optimizer_derived_tasks()}
TASKS = {**config["tasks"], **optimizer_derived_tasks()}


def task_trunk(task, shared=False):
    """The name of a task's trunk caches, or None when its finetune trains everything.

    ``shared``: the name of a pool's cache, which holds the texts under the length and cut of
    every task of this regime and type, so the tasks share one cache of the pool (texts that
    the encodings cut alike run once).
    """
    finetune = finetune_of(task)
    regime = finetune.get("trainable", "all")
    if regime == "all":
        return None
    kind = TASKS[task]["type"]
    pairs = [(finetune["max_length"], finetune["truncate"])]
    if shared:
        pairs = sorted(
            {
                (f["max_length"], f["truncate"])
                for t, spec in TASKS.items()
                if spec["type"] == kind
                and (f := finetune_of(t)).get("trainable", "all") == regime
            }
        )
    lengths, sides = zip(*pairs)
    return trunk_name(regime, kind, lengths, sides, config["trunk_cache"]["dtype"])


def pool_datasets(pool):
    """The datasets a pool's texts come from (a leaked pool: the main pool's and the task's)."""
    if pool in config["datasets"]:
        return [pool]
    return [POOL] if pool.startswith("leak_") else []


def trunk_caches(wildcards):
    """The trunk caches a model step reads: of the task's dataset and of the pool's, under the
    task's regime; none when the task's finetune trains everything."""
    name = task_trunk(wildcards.task)
    if name is None:
        return []
    caches = {TASKS[wildcards.task]["dataset"]: name}
    if "pool" in wildcards.keys():
        shared = task_trunk(wildcards.task, shared=True)
        for d in pool_datasets(wildcards.pool):
            caches.setdefault(d, shared)
    return [
        path_of("trunk", base=wildcards.base, dataset=d, trunk=n)
        for d, n in caches.items()
    ]


def trunk_flag(wildcards, input):
    """``--trunk-cache …`` for a step whose task has caches, else nothing."""
    return f"--trunk-cache {' '.join(input.trunk)}" if input.trunk else ""
