"""Settlement: measured yields per period, tariffs, statement lines and the ledger."""
