"""Delivery of encoded logs: a destination-agnostic pipeline (queue, spool, courier) and its destinations."""
