"""Fault detection and alerts (issue 8).

Pure detectors over the fleet's readings (:mod:`.offline`, :mod:`.production`,
:mod:`.fault_state`, :mod:`.peers`, :mod:`.strings`, :mod:`.integrity`), combined by
:mod:`.pipeline`; the alert lifecycle and its store (:mod:`.alerts`); notifications
(:mod:`.notify`); scheduling across server instances (:mod:`.scheduling`); the command line
(:mod:`.commands`). ``docs/faults.md`` describes the whole.
"""
