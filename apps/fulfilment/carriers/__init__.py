"""Carrier protocols (Kuaidi100, Kdniao): pure request building, signing and parsing over the
canonical types of :mod:`.base`; the HTTP clients and the simulators sit on top."""
