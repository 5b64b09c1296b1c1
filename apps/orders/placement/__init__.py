"""The flash-sale order path, one home (``docs/architecture.md`` draws it file by file):

``handler`` (the one request handler of ``POST /api/v1/orders``, for the DRF view and the ASGI
``fastpath``), ``request`` (the one input definition), ``service`` (``order_place``: gate first,
database last), ``gate`` (Lua scripts, key names, rebuild, reconcile), ``engines`` (one per
database), ``batcher`` (PostgreSQL batches), ``pgcall`` (calling the ``sql/`` functions) and
``links`` (public ids, the buyer's status link).
"""
