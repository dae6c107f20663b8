# New ablation: accuracy vs the number C of interpolated checkpoints θ_c in the gradient store.
# C = 1 is the main store (same spec, same name "main"), so its runs are shared with the others.
# This file is the worked example of docs/ablations.md, "How to add an ablation".


def checkpoints_spec():
    """Each (seed, C, strategy) retraining, and the reference strategies' runs at x = None."""
    section = ablation("checkpoints")
    if not section:
        return {"runs": []}
    task, k = ablation_task(), ablation_k(section)
    runs = []
    for seed in ablation_seeds(section):
        for count in section["counts"]:
            grad = grad_variant(checkpoints=count)
            for s in section["strategies"]:
                path = run_path("retrain", task, POOL, grad_of(s, grad), s, k, seed)
                runs.append(
                    {
                        "x": count,
                        "strategy": s,
                        "seed": seed,
                        "retrain": path,
                        **regime_of(task, grad, s, seed),
                    }
                )
        for s in section["reference"]:
            path = run_path("retrain", task, POOL, grad_of(s), s, k, seed)
            runs.append({"x": None, "strategy": s, "seed": seed, "retrain": path})
    return {
        "runs": runs,
        "x_name": "C",
        "x_label": "Interpolated checkpoints C",
        "log_x": True,
        "metrics": ["acc", "cos_truth_delta"],
        "note": f"Task {task}, K = {k}; dashed lines need no gradients.",
    }


CHECKPOINTS = checkpoints_spec()


register_ablation(
    "checkpoints",
    kind="sweep",
    spec=CHECKPOINTS,
    inputs=sweep_inputs(CHECKPOINTS),
)
