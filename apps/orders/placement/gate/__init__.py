"""The Redis gate: Lua scripts (``lua/``), their Python calls (``scripts``), key names
(``keys``), the rebuild from database truth (``rebuild``) and the reconciler (``reconcile``)."""
