# New ablation: accuracy vs the number C of interpolated checkpoints θ_c in the gradient store.
# C = 1 is the main store (same spec, same name "main"), so its runs are shared with the others.
# This file is the worked example of docs/ablations.md, "How to add an ablation".


def checkpoints_spec():
    """Each (seed, C, strategy) retraining and the reference strategies' (x = None), with the
    axis and metrics the report draws."""
    section = ablation("checkpoints")
    if not section:
        return {"runs": []}
    task, k = ablation_task(), ablation_k(section)
    variants = [(c, {}, grad_variant(checkpoints=c)) for c in section["counts"]]
    runs = variant_sweep(section, task, k, variants)
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
