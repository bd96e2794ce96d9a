"""The audit trail: append-only, hash-chained, with retention and queries."""
