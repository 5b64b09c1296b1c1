"""Order writes. Import from the submodules: placement, transitions, payments, ledger, gate_sync."""
