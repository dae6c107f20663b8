"""weights2data: find public texts that train a base model like a finetuned one did (SELECT)."""

__version__ = "0.1.0"
