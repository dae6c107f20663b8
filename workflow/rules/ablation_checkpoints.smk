# New ablation: accuracy vs the number C of interpolated checkpoints θ_c in the gradient store.
# C = 1 is the main store (same spec, same name "main"), so its runs are shared with the others.
# This file is the worked example of docs/ablations.md, "How to add an ablation".


CHECKPOINTS = checkpoints_spec()


register_ablation(
    "checkpoints",
    kind="sweep",
    spec=CHECKPOINTS,
    inputs=sweep_inputs(CHECKPOINTS),
)
