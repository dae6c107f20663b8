"""Datasets: every dataset name becomes one normalised table that all later steps read.

The table has the columns ``text``, ``label`` (-1 for unlabeled corpora), ``label_name``,
``split`` ("train" | "val" | "test") and ``group`` (the source document id). The submodules,
each one layer of that job:

- ``info``: ``DatasetInfo``, what a packaged dataset is;
- ``registry``: the packaged datasets (``DATASETS``) and their loaders, which read files shipped
  inside pip packages into the raw shape;
- ``vendored``: the loaders of the paper's tasks, subsets committed under ``data/vendor/``;
- ``normalise``: the raw shape to the normalised table: text cleaning, label coding, passages,
  column checks, fixed column order and dtypes (``COLUMNS``);
- ``splits``: group-level parts and row limits, train/val/test splits, per-seed samples of a
  split (``SPLITS``, ``sample_split``, ``task_splits``);
- ``files``: the table on disk (``write_dataset``, ``read_dataset``) and ``local:<path>`` files;
- ``build``: a name (packaged, ``hf:<id>`` or ``local:<path>``) to its table
  (``build_dataset``) and the per-dataset summary of "Table 3" (``dataset_summary``).

Import from the submodule that owns a name; this package re-exports nothing.
"""
