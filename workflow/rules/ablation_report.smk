# The one report rule of every ablation that registered itself (register_ablation in
# workflow/rules/common.smk): its table (CSV + Markdown) and figure, from its run list.


rule ablation_report:
    input:
        lambda w: ABLATIONS[w.ablation]["inputs"],
    output:
        csv=report(
            "figures/ablations/{ablation}.csv",
            caption="../report/ablation.rst",
            category="Ablations",
            subcategory="{ablation}",
        ),
        md="figures/ablations/{ablation}.md",
        pdf="figures/ablations/{ablation}.pdf",
        png=report(
            "figures/ablations/{ablation}.png",
            caption="../report/ablation.rst",
            category="Ablations",
            subcategory="{ablation}",
        ),
        prov=report(
            "provenance/figures/ablations/{ablation}.json",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory="{ablation}",
        ),
    log:
        "logs/ablations/{ablation}.log",
    benchmark:
        "data/benchmarks/ablation_{ablation}.tsv"
    wildcard_constraints:
        ablation="|".join(ABLATIONS) or "no-ablation-enabled",
    conda:
        ENV
    params:
        code=code_of("ablation-report"),
        kind=lambda w: ABLATIONS[w.ablation]["kind"],
        spec=lambda w: as_json(ABLATIONS[w.ablation]["spec"]),
        caption=lambda w: ablation_caption(w).read_text(),
        stem=lambda w, output: output.csv[: -len(".csv")],
    shell:
        "weights2data ablation-report --kind {params.kind} --spec {params.spec} "
        "--out-stem {params.stem} > {log} 2>&1"
