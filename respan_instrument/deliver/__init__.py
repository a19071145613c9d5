"""Delivery of encoded logs: a destination-agnostic pipeline (queue, spool, poster) and its destinations."""
