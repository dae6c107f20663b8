# Regime diagnostics (docs/premise.md): one `regime` job per expert and store
# variant, then one table per results table. Evaluation side only: nothing here feeds back
# into a selection.


DIAG1 = diagnostics_spec([BASE], TABLE1_TASKS, SEL["strategies"], SEL["k"], "task")
DIAG2 = (
    diagnostics_spec(
        TABLE2["bases"],
        [TABLE2["task"]],
        TABLE2["strategies"],
        TABLE2["k"],
        "model",
        TABLE2_SEEDS,
    )
    if TABLE2
    else None
)


rule regime:
    input:
        base=PATHS["base"],
        final=PATHS["expert"],
        dataset=task_dataset,
        trunk=trunk_caches,
    output:
        json=PATHS["regime"],
        sum=PATHS["regime_sum"],
    log:
        "logs/regime/{base}/{task}/{grad}/{seed}.log",
    benchmark:
        "data/benchmarks/regime/{base}/{task}/{grad}/{seed}.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        code=code_of("regime"),
        task=lambda w: as_json(task_spec(w)),
        finetune=lambda w: as_json(finetune_of(w.task)),
        spec=lambda w: as_json(gradient_spec(w.grad)),
        run_keys=lambda w: as_json(dict(w.items())),
        split_seed=config["split_seed"],
        trunk=trunk_flag,
    shell:
        "weights2data regime --base {input.base} --final {input.final} "
        "--dataset {input.dataset} --task {params.task} --finetune {params.finetune} "
        "--spec {params.spec} --seed {wildcards.seed} --split-seed {params.split_seed} "
        "--keys {params.run_keys} {params.trunk} --threads {threads} --out {output.json} "
        "--sum-out {output.sum} > {log} 2>&1"


rule diagnostics:
    input:
        spec_files(DIAG1),
    output:
        md="figures/diagnostics.md",
        csv=report(
            "figures/diagnostics.csv",
            caption="../report/diagnostics.rst",
            category="Tables",
            subcategory="Diagnostics",
        ),
        prov=report(
            "provenance/figures/diagnostics.json",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory="Diagnostics",
        ),
    log:
        "logs/diagnostics.log",
    benchmark:
        "data/benchmarks/diagnostics.tsv"
    conda:
        ENV
    params:
        code=code_of("diagnostics-table"),
        spec=as_json(DIAG1),
        stem=lambda w, output: output.md[: -len(".md")],
    shell:
        "weights2data diagnostics-table --spec {params.spec} --out-stem {params.stem} "
        "> {log} 2>&1"


rule diagnostics_table2:
    input:
        spec_files(DIAG2) if DIAG2 else [],
    output:
        md="figures/diagnostics_table2.md",
        csv=report(
            "figures/diagnostics_table2.csv",
            caption="../report/diagnostics.rst",
            category="Tables",
            subcategory="Diagnostics",
        ),
        prov=report(
            "provenance/figures/diagnostics_table2.json",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory="Diagnostics",
        ),
    log:
        "logs/diagnostics_table2.log",
    benchmark:
        "data/benchmarks/diagnostics_table2.tsv"
    conda:
        ENV
    params:
        code=code_of("diagnostics-table"),
        spec=as_json(DIAG2),
        stem=lambda w, output: output.md[: -len(".md")],
    shell:
        "weights2data diagnostics-table --spec {params.spec} --out-stem {params.stem} "
        "> {log} 2>&1"
