"""Many workers and web servers over PostgreSQL (run queue, checkpoints, event log) and Redis
Streams (events between processes). Needs the ``postgres`` and ``redis`` extras.
"""
