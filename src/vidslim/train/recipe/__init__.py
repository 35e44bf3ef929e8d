"""Runs described by a YAML run config: the model section, the data section, the setup that builds a run from
them (`prepare_run`) and the evaluation of a run's model (`evaluate_run`). `vidslim train` and `vidslim eval` only
parse arguments and print; the recipe lives here."""

from typing import TYPE_CHECKING

from vidslim._lazy import lazy_exports

if TYPE_CHECKING:  # the public names: what IDEs read; at run time each module is imported on first use
    from vidslim.train.recipe.data import DataSection as DataSection
    from vidslim.train.recipe.evaluate import evaluate_run as evaluate_run
    from vidslim.train.recipe.model import ModelSection as ModelSection
    from vidslim.train.recipe.setup import Run as Run
    from vidslim.train.recipe.setup import prepare_run as prepare_run
    from vidslim.train.recipe.setup import read_tree as read_tree
    from vidslim.train.recipe.setup import resolve_checkpoint as resolve_checkpoint

__getattr__, __dir__, __all__ = lazy_exports(__name__)
