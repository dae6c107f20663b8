# New ablation: accuracy vs the number C of interpolated checkpoints θ_c in the gradient store.
# C = 1 is the main store (same spec, same name "main"), so its runs are shared with the others.
# This file is the worked example of docs/ablations.md, "How to add an ablation".


def checkpoints_spec():
    """Each (task, seed, C, strategy) retraining and the reference strategies' (x = None), with
    the axis and metrics the report draws. Several tasks: one line per task and strategy.
    """
    section = ablation("checkpoints")
    if not section:
        return {"runs": []}
    tasks = section["tasks"] or [ablation_task()]
    tasks = classification_tasks(tasks, "ablations.checkpoints.tasks")
    k = ablation_k(section)
    variants = [(c, {}, grad_variant(checkpoints=c)) for c in section["counts"]]
    label = len(tasks) > 1
    runs = [
        dict(run, task=task, label=task) if label else run
        for task in tasks
        for run in variant_sweep(section, task, k, variants, alignment=True)
    ]
    return {
        "runs": runs,
        "x_name": "C",
        "x_label": "Interpolated checkpoints C",
        "log_x": True,
        "metrics": ["acc", "cos_truth_delta", "cos_sel_truth", "cos_sel_delta"],
        "note": f"{'Tasks' if label else 'Task'} {', '.join(tasks)}, K = {k}; "
        "dashed lines need no gradients.",
    }


CHECKPOINTS = checkpoints_spec()


register_ablation(
    "checkpoints",
    kind="sweep",
    spec=CHECKPOINTS,
    inputs=sweep_inputs(CHECKPOINTS),
)
