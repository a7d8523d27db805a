"""Similar-case search over imaging embeddings (HNSW) and over every shared modality.

``search`` answers one patient; ``build`` persists the index and gold ``similar_cases``;
``mmlake.similar.cli.app`` is the ``mmlake similar`` command. See docs/similar_cases.md.
"""

from mmlake.similar.gold import BuildResult, build
from mmlake.similar.model import Neighbour, SimilarCaseError
from mmlake.similar.search import search

__all__ = ["BuildResult", "Neighbour", "SimilarCaseError", "build", "search"]
