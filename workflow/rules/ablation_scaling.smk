# F2 (paper Fig. 2): accuracy vs selection size K, one line per strategy.
# Runs at K = selection.k are Table 1's own runs (same paths), so they are not recomputed.


SCALING = scaling_spec()


register_ablation(
    "scaling",
    kind="sweep",
    spec=SCALING,
    inputs=[r["retrain"] for r in SCALING["runs"]],
)
