# T4 (paper Table 4): SELECT accuracy for every task × seed-pool pair. Pools are keys of
# `datasets` (their train split feeds rule pool_subset); the main pool's runs are shared.


SEED_POOLS = seed_pools_spec()


register_ablation(
    "seed_pools",
    kind="pools",
    spec=SEED_POOLS,
    inputs=[r["retrain"] for r in SEED_POOLS["runs"]],
)
