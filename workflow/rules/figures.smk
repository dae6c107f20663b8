rule experts_report:
    input:
        expert_metrics([BASE], expert_tasks()),
    output:
        md="figures/experts.md",
        csv=report(
            "figures/experts.csv",
            caption="../report/experts.rst",
            category="Tables",
            subcategory="Experts",
        ),
        prov=report(
            "provenance/figures/experts.json",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory="Experts",
        ),
    log:
        "logs/experts_report.log",
    benchmark:
        "data/benchmarks/experts_report.tsv"
    conda:
        ENV
    params:
        code=code_of("experts-report"),
        experts=as_json(expert_coordinates([BASE], expert_tasks())),
        stem=lambda w, output: output.md[: -len(".md")],
    shell:
        "weights2data experts-report --experts {params.experts} --out-stem {params.stem} "
        "> {log} 2>&1"


rule table1:
    input:
        retrain=table1_inputs("retrain"),
        similarity=table1_inputs("similarity"),
        experts=expert_metrics([BASE], TABLE1_TASKS),
    output:
        md="figures/table1.md",
        csv=report(
            "figures/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
            subcategory="Table 1 classification",
        ),
        tex="figures/table1.tex",
        paired_md="figures/table1_paired.md",
        summary_md="figures/table1_summary.md",
        power_md="figures/table1_power.md",
        paired_csv=report(
            "figures/table1_paired.csv",
            caption="../report/paired.rst",
            category="Tables",
            subcategory="Table 1 classification",
        ),
        pdf="figures/table1.pdf",
        png=report(
            "figures/table1.png",
            caption="../report/table1.rst",
            category="Tables",
            subcategory="Table 1 classification",
        ),
        prov=report(
            "provenance/figures/table1.json",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory="Table 1 classification",
        ),
    log:
        "logs/table1.log",
    benchmark:
        "data/benchmarks/table1.tsv"
    conda:
        ENV
    params:
        code=code_of("table"),
        experts=as_json(expert_coordinates([BASE], TABLE1_TASKS)),
        stem=lambda w, output: output[0][: -len(".md")],
    shell:
        "weights2data table --kind classification --retrain {input.retrain} "
        "--similarity {input.similarity} --experts {params.experts} "
        "--out-stem {params.stem} > {log} 2>&1"


rule table2:
    input:
        retrain=table2_inputs("retrain"),
        similarity=table2_inputs("similarity"),
        experts=(
            expert_metrics(TABLE2["bases"], [TABLE2["task"]], TABLE2_SEEDS)
            if TABLE2
            else []
        ),
    output:
        md="figures/table2.md",
        csv=report(
            "figures/table2.csv",
            caption="../report/table2.rst",
            category="Tables",
            subcategory="Table 2 SFT",
        ),
        tex="figures/table2.tex",
        paired_md="figures/table2_paired.md",
        paired_csv=report(
            "figures/table2_paired.csv",
            caption="../report/paired.rst",
            category="Tables",
            subcategory="Table 2 SFT",
        ),
        pdf="figures/table2.pdf",
        png=report(
            "figures/table2.png",
            caption="../report/table2.rst",
            category="Tables",
            subcategory="Table 2 SFT",
        ),
        prov=report(
            "provenance/figures/table2.json",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory="Table 2 SFT",
        ),
    log:
        "logs/table2.log",
    benchmark:
        "data/benchmarks/table2.tsv"
    conda:
        ENV
    params:
        code=code_of("table"),
        experts=as_json(
            expert_coordinates(TABLE2["bases"], [TABLE2["task"]], TABLE2_SEEDS)
            if TABLE2
            else {}
        ),
        stem=lambda w, output: output[0][: -len(".md")],
    shell:
        "weights2data table --kind sft --retrain {input.retrain} "
        "--similarity {input.similarity} --experts {params.experts} "
        "--out-stem {params.stem} > {log} 2>&1"


rule table3:
    input:
        expand(PATHS["dataset"], dataset=config["datasets"]),
    output:
        md="figures/table3.md",
        csv=report(
            "figures/table3.csv",
            caption="../report/table3.rst",
            category="Tables",
            subcategory="Table 3 datasets",
        ),
        tex="figures/table3.tex",
        prov=report(
            "provenance/figures/table3.json",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory="Table 3 datasets",
        ),
    log:
        "logs/table3.log",
    benchmark:
        "data/benchmarks/table3.tsv"
    conda:
        ENV
    params:
        code=code_of("datasets-table"),
        roles=as_json(dataset_roles()),
        stem=lambda w, output: output[0][: -len(".md")],
    shell:
        "weights2data datasets-table --roles {params.roles} "
        "--out-stem {params.stem} > {log} 2>&1"


rule class_balance:
    input:
        selections=table1_inputs("selections"),
        datasets=[dataset_path(config["tasks"][t]["dataset"]) for t in TABLE1_TASKS],
    output:
        csv=report(
            "figures/class_balance.csv",
            caption="../report/class_balance.rst",
            category="Tables",
            subcategory="Class balance",
        ),
        pdf="figures/class_balance.pdf",
        png=report(
            "figures/class_balance.png",
            caption="../report/class_balance.rst",
            category="Tables",
            subcategory="Class balance",
        ),
        prov=report(
            "provenance/figures/class_balance.json",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory="Class balance",
        ),
    log:
        "logs/class_balance.log",
    benchmark:
        "data/benchmarks/class_balance.tsv"
    conda:
        ENV
    params:
        code=code_of("class-balance"),
        selections=as_json(selection_coordinates()),
        stem=lambda w, output: output[0][: -len(".csv")],
        datasets=as_json(
            {t: dataset_path(config["tasks"][t]["dataset"]) for t in TABLE1_TASKS}
        ),
    shell:
        "weights2data class-balance --selections {params.selections} "
        "--task-datasets {params.datasets} --out-stem {params.stem} > {log} 2>&1"


rule datasets:
    input:
        expand(PATHS["dataset"], dataset=config["datasets"]),


rule bases:
    input:
        expand(PATHS["base"], base=config["bases"]),


rule headline_metrics:
    input:
        table1="figures/table1.csv",
        table2="figures/table2.csv" if TABLE2 else [],
        diagnostics=["figures/diagnostics.csv"]
        + (["figures/diagnostics_table2.csv"] if TABLE2 else []),
    output:
        "figures/metrics.json",
    log:
        "logs/headline_metrics.log",
    conda:
        ENV
    params:
        code=code_of("headline-metrics"),
    shell:
        "weights2data headline-metrics --table1 {input.table1} --table2 {input.table2} "
        "--diagnostics {input.diagnostics} --out {output} > {log} 2>&1"


rule runtime:
    input:
        lambda w: all_targets(),  # at DAG time: the ablation files add their targets later
    output:
        md="figures/runtime.md",
        csv=report(
            "figures/runtime.csv",
            caption="../report/runtime.rst",
            category="Runtime",
        ),
        prov=report(
            "provenance/figures/runtime.json",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory="Runtime",
        ),
    log:
        "logs/runtime.log",
    conda:
        ENV
    params:
        code=code_of("runtime-table"),
        stem=lambda w, output: output.md[: -len(".md")],
    shell:
        "weights2data runtime-table --benchmarks data/benchmarks --logs logs "
        "--out-stem {params.stem} > {log} 2>&1"
