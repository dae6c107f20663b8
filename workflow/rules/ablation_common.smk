# Run lists of the ablations (functions only, so that `snakemake --lint` stays clean).
# Each *_spec() returns {"runs": [...], ...report options}; an empty run list when the
# ablation is disabled. The rules live in ablation_<name>.smk.


def classification_tasks(tasks, key):
    """``tasks`` when each is a classification task of `tasks`; else an error naming ``key``."""
    unknown = [t for t in tasks if TASKS.get(t, {}).get("type") != "classification"]
    if unknown:
        raise ValueError(f"{key} {unknown}: not classification tasks of `tasks`.")
    return tasks


def leak_pool_name(task, fraction):
    return f"leak_{task}_{fraction:g}"


def leakage_spec():
    section = ablation("leakage")
    if not section:
        return {"runs": []}
    task, k = ablation_task(), ablation_k(section)
    runs = []
    for f in section["fractions"]:
        pool = leak_pool_name(task, f)
        for s in section["strategies"]:
            for seed in ablation_seeds(section):
                grad = grad_of(s)
                runs.append(
                    {
                        "x": f,
                        "strategy": s,
                        "seed": seed,
                        "retrain": run_path("retrain", task, pool, grad, s, k, seed),
                        "similarity": run_path(
                            "similarity", task, pool, grad, s, k, seed
                        ),
                        "selection": run_path(
                            "selections", task, pool, grad, s, k, seed
                        ),
                        "pool_file": path_of("pool", pool=pool, seed=seed),
                    }
                )
    return {"runs": runs, "note": f"Task {task}, K = {k}, other texts from {POOL}."}


def replacement_spec():
    section = ablation("replacement")
    if not section:
        return {"runs": []}
    task, k = ablation_task(), ablation_k(section)
    runs = [
        {
            "strategy": s,
            "seed": seed,
            "path": run_path("replacement", task, POOL, grad_of(s), s, k, seed),
        }
        for s in section["strategies"]
        for seed in ablation_seeds(section)
    ]
    return {
        "runs": runs,
        "note": f"Task {task}, K = {k}, {section['trials']} trials each.",
    }


def regime_of(task, grad, strategy, seed):
    """A store-reading run's regime file ({} for strategies that read no store)."""
    if strategy not in NEEDS_STORE:
        return {}
    return {"regime": regime_file(BASE, task, grad, seed, "json")}


def alignment_of(task, grad, strategy, k, seed):
    """The files that give a store-reading run's cos(S_sel, S_true) and cos(S_sel, Δ)."""
    if strategy not in NEEDS_STORE:
        return {}
    store = path_of("gradients", base=BASE, task=task, pool=POOL, grad=grad, seed=seed)
    return {
        "selection": run_path("selections", task, POOL, grad, strategy, k, seed),
        "store": store,
        "truth_sum": regime_file(BASE, task, grad, seed, "npy"),
    }


def variant_sweep(section, task, k, variants, alignment=False):
    """The runs of a sweep over gradient-store variants: per seed, each (x, labels, store
    variant) of ``variants`` and each of the section's strategies (with its regime
    diagnostics, and with ``alignment`` its selection's cosines), and the section's reference
    strategies at x = None."""
    runs = []
    for seed in ablation_seeds(section):
        for x, labels, grad in variants:
            for s in section["strategies"]:
                path = run_path("retrain", task, POOL, grad_of(s, grad), s, k, seed)
                runs.append(
                    {
                        "x": x,
                        **labels,
                        "strategy": s,
                        "seed": seed,
                        "retrain": path,
                        **regime_of(task, grad, s, seed),
                        **(alignment_of(task, grad, s, k, seed) if alignment else {}),
                    }
                )
        for s in section["reference"]:
            path = run_path("retrain", task, POOL, grad_of(s), s, k, seed)
            runs.append({"x": None, "strategy": s, "seed": seed, "retrain": path})
    return runs


def sweep_inputs(spec):
    """The files a sweep report reads: every run's retraining, regime diagnostics and, where
    the sweep asks for its cosines, selection, store and S_true."""
    runs = spec["runs"]
    keys = ("regime", "selection", "store", "truth_sum")
    return [r["retrain"] for r in runs] + sorted(
        {r[k] for r in runs for k in keys if k in r}
    )


def optimizer_finetune(task, name):
    """The task's finetune settings with the named optimizer override merged in."""
    origin = DERIVED_TASKS.get(task, task)
    return dict(finetune_of(origin), **ABL["optimizer"]["optimizers"][name])


def optimizer_expert_task(task, name):
    """The task whose expert was trained with optimizer `name` (see optimizer_derived_tasks)."""
    if optimizer_finetune(task, name) == finetune_of(task):
        return task
    return f"{task}-{name}"


def optimizer_spec():
    section = ablation("optimizer")
    if not section:
        return {"runs": []}
    task = optimizer_task()
    if task is None:
        return {"runs": []}  # no SFT task in this config: nothing to compare
    unknown = set(section["experts"] + section["retrain"]) - set(section["optimizers"])
    if unknown:
        raise ValueError(
            f"ablations.optimizer names unknown optimizers {sorted(unknown)}."
        )
    base = section["base"] or (TABLE2["bases"][0] if TABLE2 else BASE)
    k = ablation_k(section)
    shared = config["tasks"][task]["type"] == "sft"
    runs = []
    for expert in section["experts"]:
        for retrain in section["retrain"]:
            for s in section["strategies"]:
                etask = (
                    task
                    if shared and s == "random"
                    else optimizer_expert_task(task, expert)
                )
                own = optimizer_finetune(etask, retrain) == finetune_of(etask)
                for seed in ablation_seeds(section):
                    kind = "retrain" if own else "retrain_optimizer"
                    path = run_path(
                        kind,
                        etask,
                        POOL,
                        grad_of(s),
                        s,
                        k,
                        seed,
                        base,
                        optimizer=retrain,
                    )
                    runs.append(
                        {
                            "expert_optimizer": expert,
                            "retrain_optimizer": retrain,
                            "strategy": s,
                            "seed": seed,
                            "retrain": path,
                        }
                    )
    note = f"Task {task}, base {base}, K = {k}."
    if shared:
        note += " Random picks need no expert on an SFT task, so each row shares them."
    return {"runs": runs, "note": note}
