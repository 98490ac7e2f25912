"""The smart meter's P1 port (issue 17): telegrams in, one grid-meter reading per interval out.

Modules: :mod:`~gateway_firmware.p1.telegram` (decode one telegram with dsmr-parser, reasons
for a bad one), :mod:`~gateway_firmware.p1.aggregate` (telegrams into interval readings,
meter swaps and resets), :mod:`~gateway_firmware.p1.identity` (the equipment id, hashed),
:mod:`~gateway_firmware.p1.port` (the serial line, cut into telegrams, in a thread),
:mod:`~gateway_firmware.p1.source` (what the service polls, with its status line),
:mod:`~gateway_firmware.p1.commands` (``zonnewijk-gateway p1``). ``docs/p1.md`` explains it.
"""
