"""Content packs the module-engine tests install: good ones, and broken ones of each kind."""
