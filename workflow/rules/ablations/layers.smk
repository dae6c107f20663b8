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
    tasks = section["tasks"] or TABLE1_TASKS
    unknown = [t for t in tasks if TASKS.get(t, {}).get("type") != "classification"]
    if unknown:
        raise ValueError(
            f"ablations.layers.tasks {unknown}: not classification tasks of `tasks`."
        )
    k = section["k"] or SEL["k"]
    strategy, reference = section["strategy"], section["reference"]
    runs = []
    for task in tasks:
        for seed in ablation_seeds(section):
            for layers in section["variants"]:
                grad = grad_variant(layers=layers)
                runs.append(
                    {
                        "task": task,
                        "layers": layer_label(layers),
                        "strategy": strategy,
                        "seed": seed,
                        "retrain": run_path(
                            "retrain",
                            task,
                            POOL,
                            grad_of(strategy, grad),
                            strategy,
                            k,
                            seed,
                        ),
                        **regime_of(task, grad, strategy, seed),
                    }
                )
            path = run_path(
                "retrain", task, POOL, grad_of(reference), reference, k, seed
            )
            runs.append(
                {
                    "task": task,
                    "layers": None,
                    "strategy": reference,
                    "seed": seed,
                    "retrain": path,
                }
            )
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
