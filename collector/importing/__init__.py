"""Readings from files: ``zonnewijk import readings`` and ``zonnewijk faults check`` (issue 20).

- the formats, one module each, all yielding :mod:`.rows`: the documented generic CSV
  (:mod:`.generic_csv`), a gateway's spool file (:mod:`.spool_file`), Huawei FusionSolar's
  inverter report (:mod:`.fusionsolar`) and SMA Sunny Portal's CSV download
  (:mod:`.sunny_portal`); local times with their time zone (:mod:`.timestamps`);
- interval energy turned into a counter flagged as imported (:mod:`.synthetic`);
- the import itself (:mod:`.loader`): the collector's own decoding, validation, line protocol,
  writer and dead-letter accounting, point identity for idempotence (:mod:`.stored`), a
  summary and a progress bar (:mod:`.report`), issued settlement months (:mod:`.settled`);
- the detectors run offline on files (:mod:`.offline_check`);
- :mod:`.commands`: ``zonnewijk import readings``; :mod:`.check_commands`: ``zonnewijk faults check``.
"""
