"""The module engine: the NPQSL modules as content packs, one ``modules`` plugin serving them all.

Each pack is one deep-linking offer (activity = the module key, graded out of 100), so every
module gets its own gradebook line item while one set of pages, records and rules serves every
pack. Packs are data (``PACK_FORMAT.md``); ``progress`` is the read API for other plugins;
``engine`` documents the records kept and the learning events emitted.
"""

from .plugin import ModulesPlugin

__all__ = ["ModulesPlugin"]
