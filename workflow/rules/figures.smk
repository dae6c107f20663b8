rule experts_report:
    input:
        expand(
            "data/metrics/expert/{base}/{task}/{seed}.json",
            base=BASE,
            task=expert_tasks(),
            seed=SEEDS,
        ),
    output:
        md="figures/experts.md",
        csv="figures/experts.csv",
    log:
        "logs/experts_report.log",
    conda:
        ENV
    params:
        stem=lambda w, output: output.md[: -len(".md")],
    shell:
        "weights2data experts-report --metrics {input} --out-stem {params.stem} > {log} 2>&1"


rule experts:
    input:
        expand(
            "data/metrics/expert/{base}/{task}/{seed}.json",
            base=BASE,
            task=config["tasks"],
            seed=SEEDS,
        ),


rule datasets:
    input:
        expand("data/datasets/{dataset}.parquet", dataset=config["datasets"]),


rule bases:
    input:
        expand("data/models/base/{base}", base=config["bases"]),
