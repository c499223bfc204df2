"""The failover machinery: the pool on ONE host at a time, moved between hosts as a unit.

Dialect-free: a dialect comes in as a :class:`~luna_handlers.db.pool.backend.Backend`, and
nothing in this package imports one. Glossary, one name per concept (smallest first):

host
    One server address, :class:`~luna_handlers.db.hosts.HostPort`.
backend
    One configured database as the pool sees it: its hosts in order, the target session
    kind, and the dialect's functions (probe, connections, classify, change feed);
    :class:`~.backend.Backend`, made by a dialect.
probe
    Connect to one host, read its role (:class:`~.roles.HostRole`), disconnect; a round
    probes every host at once and picks the first that fits (:mod:`.probe`).
session
    One borrowed connection that runs prepared statements,
    :class:`~luna_handlers.db.database.Session`.
connections
    Every driver connection to one host, lent out as sessions:
    :class:`~.connections.Connections` (asyncpg's in the PostgreSQL dialect, an SQLAlchemy
    engine's for Oracle). Waiting for a free one is bounded by :class:`~.places.Places`.
scan share
    Connections of their own for lists, counts and searches (``Database.scan()``), with
    their own size, wait and statement timeout, so that slow scans never take those of
    reads by id and writes: :class:`~.connections.ScanShare`.
pool
    The connections of one host with their driver errors classified into service errors,
    :class:`~.hostpool.HostPool`. "Pool" means this and nothing else.
borrow
    One ``async with database.read()/write()``: a session taken from a pool and given back
    (:class:`~.hostpool.Borrow`; :class:`~.generation.CountedBorrow` also counts it on its
    generation).
generation
    One pool with its host and role and the sessions running on it,
    :class:`~.generation.Generation`: opened warm, swapped in, retired (drained, closed)
    after the next switch; numbered 1, 2, ...
switch
    Replacing the active generation by one on another host (:mod:`.switching`).
failover database
    The :class:`~luna_handlers.db.database.Database` over all hosts:
    :class:`~.failover.FailoverDatabase`, one active generation at a time.
"""
