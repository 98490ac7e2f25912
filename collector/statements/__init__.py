"""Statements, bookkeeping exports, SEPA payment files and the monthly schedule (issue 7).

Modules: :mod:`.config` (the ``config/statements.yaml`` settings), :mod:`.formatting` (Dutch and
English numbers and dates), :mod:`.data` (a member's statement read from the ledger and the
registry), :mod:`.render` (HTML and PDF from one template), :mod:`.bookkeeping` (CSV per run),
:mod:`.sepa` (pain.008 / pain.001), :mod:`.mailer` (SMTP), :mod:`.monthly` (the scheduled job),
:mod:`.commands` (``zonnewijk statements`` and ``zonnewijk export bookkeeping|sepa``).
"""
