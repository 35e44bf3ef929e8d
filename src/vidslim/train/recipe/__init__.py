"""Runs described by a YAML run config: the model section, the data section, and the setup that builds a run from
them (`prepare_run`). `vidslim train` and `vidslim eval` only parse arguments and print; the recipe lives here."""

from vidslim._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "DataSection": "vidslim.train.recipe.data",
    "ModelSection": "vidslim.train.recipe.model",
    "Run": "vidslim.train.recipe.setup",
    "prepare_run": "vidslim.train.recipe.setup",
    "read_tree": "vidslim.train.recipe.setup",
    "resolve_checkpoint": "vidslim.train.recipe.setup",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
