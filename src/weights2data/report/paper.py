"""The numbers the paper reports, to print beside this project's (the README's brief Table 1)
and to quote in the docs: "Approximating Language Model Training Data from Weights"."""

from __future__ import annotations

from types import MappingProxyType

# The paper's Table 1 (GPT-2 124M, K = 1,000 of 10,000 NQ passages): test accuracy (%).
PAPER_TABLE1 = MappingProxyType(
    {
        "ag_news": {
            "random": 65.6,
            "topk_balanced": 61.2,
            "topk": 48.0,
            "pmin": 63.0,
            "pmax": 35.5,
            "select_batch": 75.6,
            "select": 80.1,
            "expert": 88.3,
        },
        "dbpedia": {
            "random": 40.2,
            "topk_balanced": 40.0,
            "topk": 20.5,
            "pmin": 53.0,
            "pmax": 35.4,
            "select_batch": 58.0,
            "select": 59.9,
            "expert": 88.0,
        },
        "imdb": {
            "random": 55.2,
            "topk_balanced": 57.7,
            "topk": 53.2,
            "pmin": 54.4,
            "pmax": 51.3,
            "select_batch": 59.9,
            "select": 63.8,
            "expert": 80.9,
        },
    }
)

# The paper's Table 2 (SFT, MSMARCO → NQ): test perplexity of Llama-3.2 3B and 1B.
PAPER_TABLE2 = MappingProxyType(
    {
        "llama_3b": {
            "random": 3.31,
            "topk": 9.93,
            "pmin": 2.76,
            "pmax": 36.01,
            "select_batch": 2.67,
            "select": 2.30,
            "expert": 2.01,
        },
        "llama_1b": {
            "random": 4.15,
            "topk": 20.97,
            "pmin": 2.63,
            "pmax": 46.26,
            "select_batch": 3.44,
            "select": 2.61,
            "expert": 2.15,
        },
    }
)
