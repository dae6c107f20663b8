# New: gradients beyond the head. SELECT's store over the output layer (head: the paper's),
# the last block's linear layers, or both, on the Table 1 tasks; each store's premise
# diagnostic cos(S_true, Δ) beside its accuracy (docs/premise.md). The head's runs at
# K = selection.k are Table 1's own.


def layer_label(layers):
    return layers if isinstance(layers, str) else "+".join(layers)


def layers_spec():
    section = ablation("layers")
    if not section:
        return {"runs": []}
    tasks = classification_tasks(
        section["tasks"] or TABLE1_TASKS, "ablations.layers.tasks"
    )
    k = section["k"] or SEL["k"]
    strategy, reference = section["strategy"], section["reference"]
    one_each = dict(section, strategies=[strategy], reference=[reference])
    variants = [
        (None, {"layers": layer_label(v)}, grad_variant(layers=v))
        for v in section["variants"]
    ]
    runs = [
        dict(run, task=task)
        for task in tasks
        for run in variant_sweep(one_each, task, k, variants)
    ]
    return {
        "runs": runs,
        "layers": [layer_label(v) for v in section["variants"]],
        "strategy": strategy,
        "reference": reference,
        "note": f"K = {k}, seed pool {POOL}.",
    }


LAYERS = layers_spec()


register_ablation(
    "layers",
    kind="layers",
    spec=LAYERS,
    inputs=sweep_inputs(LAYERS),
)
