# F5 (paper Fig. 5): accuracy vs projection dimension k of a full-vocabulary gradient store,
# with Random (no gradients) as a horizontal line. `exact: true` adds the unprojected V×d store.


def projection_spec():
    section = ablation("projection")
    if not section:
        return {"runs": []}
    task, k = ablation_task(), ablation_k(section)
    sketch = {"loss": section["loss"], "projection": section["projection"]}
    variants = [
        (dim, {"label": ""}, grad_variant(**sketch, k=dim)) for dim in section["dims"]
    ]
    if section["exact"]:
        exact = grad_variant(loss=section["loss"], projection="none")
        variants.append((None, {"label": "exact"}, exact))
    runs = variant_sweep(section, task, k, variants)
    return {
        "runs": runs,
        "x_name": "k",
        "x_label": "Projection dimension k",
        "log_x": True,
        "metrics": ["acc", "cos_truth_delta"],
        "note": f"Task {task}, K = {k}, gradient loss {section['loss']}, "
        f"{section['projection']} sketch; dashed lines do not depend on k.",
    }


PROJECTION = projection_spec()


register_ablation(
    "projection",
    kind="sweep",
    spec=PROJECTION,
    inputs=sweep_inputs(PROJECTION),
)
