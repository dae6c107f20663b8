# F5 (paper Fig. 5): accuracy vs projection dimension k of a full-vocabulary gradient store,
# with Random (no gradients) as a horizontal line. `exact: true` adds the unprojected V×d store.


PROJECTION = projection_spec()


register_ablation(
    "projection",
    kind="sweep",
    spec=PROJECTION,
    inputs=sweep_inputs(PROJECTION),
)
