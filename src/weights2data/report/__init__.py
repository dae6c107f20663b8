"""Tables, figures and reports of the paper, rendered from the pipeline's per-run records.

Modules by role: ``cells`` (one cell formatter and the metric type), ``writers`` (CSV, Markdown,
LaTeX), ``style`` (the look of every figure), ``frames`` (checks of record frames), ``tables``
(Tables 1–3, experts), ``figures`` (their bar and class-balance figures), ``results`` (gathers
run files into those tables), ``paired``, ``diagnostics``, ``headline``, ``runtime`` and
``ablations`` / ``ablation_figures``.
"""
