# T4 (paper Table 4): SELECT accuracy for every task × seed-pool pair. Pools are keys of
# `datasets` (their train split feeds rule pool_subset); the main pool's runs are shared.


def seed_pools_spec():
    section = ablation("seed_pools")
    if not section:
        return {"runs": []}
    tasks = section["tasks"] or [ablation_task()]
    pools = section["pools"] or [POOL]
    missing = [t for t in tasks if t not in config["tasks"]]
    missing += [p for p in pools if p not in config["datasets"]]
    if missing:
        raise ValueError(
            f"ablations.seed_pools names {missing}: not keys of `tasks` / `datasets`."
        )
    k = ablation_k(section)
    runs = [
        {
            "task": task,
            "pool": pool,
            "strategy": s,
            "seed": seed,
            "retrain": run_path("retrain", task, pool, grad_of(s), s, k, seed),
        }
        for task in tasks
        for pool in pools
        for s in section["strategies"]
        for seed in ablation_seeds(section)
    ]
    return {"runs": runs}


SEED_POOLS = seed_pools_spec()


register_ablation(
    "seed_pools",
    kind="pools",
    spec=SEED_POOLS,
    inputs=[r["retrain"] for r in SEED_POOLS["runs"]],
)
