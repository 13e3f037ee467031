"""Corpus importers: one public layout each -> ``Sample`` rows + problems in the import report.

Importing this package registers every built-in importer in ``IMPORTERS`` (short name -> spec with a
``Strict`` options model): merr, mer_factory, mer2023, mer2024, mer2025, emer, ovmerd, custom_csv,
dfew, mafw, emobench_m, mme_emotion.
``emollm prepare RECIPE`` picks one by the recipe's ``importer:`` key; see docs/DATA.md.

    spec = IMPORTERS.get("mer2023")
    opts = spec.options_model.model_validate({"source": "npz"})
    samples = spec.load(opts, ImportContext(root, out_dir, label_space("mer6"), ImportReport()))
"""

# Built-in importers register themselves on import; a missing module is an error, not a skip.
from emollm.data.importers import custom_csv as _custom_csv  # noqa: F401
from emollm.data.importers import dfew as _dfew  # noqa: F401
from emollm.data.importers import emer as _emer  # noqa: F401
from emollm.data.importers import emobench_m as _emobench_m  # noqa: F401
from emollm.data.importers import mafw as _mafw  # noqa: F401
from emollm.data.importers import mer2023 as _mer2023  # noqa: F401
from emollm.data.importers import mer2024 as _mer2024  # noqa: F401
from emollm.data.importers import mer2025 as _mer2025  # noqa: F401
from emollm.data.importers import mer_factory as _mer_factory  # noqa: F401
from emollm.data.importers import merr as _merr  # noqa: F401
from emollm.data.importers import mme_emotion as _mme_emotion  # noqa: F401
from emollm.data.importers import ovmerd as _ovmerd  # noqa: F401
from emollm.data.importers.base import (
    IMPORTERS,
    CommonOptions,
    ImportContext,
    ImporterError,
    ImporterSpec,
    register_importer,
)

__all__ = ["IMPORTERS", "CommonOptions", "ImportContext", "ImporterError", "ImporterSpec", "register_importer"]
