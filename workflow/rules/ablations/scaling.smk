# F2 (paper Fig. 2): accuracy vs selection size K, one line per strategy.
# Runs at K = selection.k are Table 1's own runs (same paths), so they are not recomputed.


def scaling_spec():
    section = ablation("scaling")
    if not section:
        return {"runs": []}
    task = ablation_task()
    runs = [
        {
            "x": k,
            "strategy": s,
            "seed": seed,
            "retrain": run_path("retrain", task, POOL, grad_of(s), s, k, seed),
        }
        for k in section["ks"]
        for s in section["strategies"]
        for seed in ablation_seeds(section)
    ]
    return {
        "runs": runs,
        "x_name": "K",
        "x_label": "Selection size K (texts)",
        "log_x": True,
        "note": f"Task {task}, seed pool {POOL} ({SEL['pool_size']} texts).",
    }


SCALING = scaling_spec()


register_ablation(
    "scaling",
    kind="sweep",
    spec=SCALING,
    inputs=[r["retrain"] for r in SCALING["runs"]],
)
