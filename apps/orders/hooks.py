"""Hooks the apps above orders register, so orders never imports them (DESIGN: a lower app reacts
to a higher one through a hook the higher app registers).

- ``order_changed``: sent after an order change has committed (``events.order_changed_on_commit``),
  in the thread that made it, with kwargs ``order`` (the order as changed), ``from_status`` (None for
  a new order or when not known) and ``created``. Receivers must be cheap when they have nothing to
  do (placement calls it for every order) and must not raise (it is sent with ``send_robust``).
"""

from __future__ import annotations

from django.dispatch import Signal

order_changed = Signal()
