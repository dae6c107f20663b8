"""The pipeline's steps: file in, file out, one function per subcommand of ``weights2data``.

Each module groups the steps of one stage (``models``, ``select``, ``evaluate``, ``report``,
``ablation``, ``diagnose``); a step ``<name>(args) -> str`` reads its inputs, calls the library,
writes its outputs atomically and returns its one-line summary. Its ``args`` dataclass is its
command line (``steps.args``). Library modules are imported inside each step, not at the top:
the CLI then starts without torch for ``--help``, and each step's code fingerprint
(``weights2data.codeprint``) covers only the code that step runs.
"""
