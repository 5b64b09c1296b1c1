"""Order writes. Import from the submodules: transitions, payments, ledger. Placing an order is
``apps.orders.placement``."""
