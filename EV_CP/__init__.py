"""Charging point: the Engine (charger) and the Monitor (its health module).

``engine_core`` and ``monitor_core`` hold the pure logic (no sockets, no Kafka),
so it can be unit-tested exactly; ``EV_CP_E.py`` and ``EV_CP_M.py`` wire it to
the network and the console.
"""
