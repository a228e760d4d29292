"""The chaos harness's parts (tools/chaos/chaos.py runs them in this order, per backend):

- `cluster`: the system under test on one backend set (`aws`: moto behind the HTTP fault
  proxy, a Postgres of the run's own behind the TCP fault proxy; `embedded`: SQLite, the
  queue table, local disk on a small tmpfs), a Redis of its own, the webhook receiver, the
  API and the workers; what the faults and the ledger use (kill, restart, duplicate sends,
  rows, objects).
- `services`: the servers the run starts so it may stop them: Postgres, Redis, the tmpfs.
- `proxy`: the HTTP fault proxy (errors per API call, latency, resets, blackhole) and the
  TCP one (blackhole, resets).
- `load`: uploads through the API, worker kills and duplicate sends while they run, the
  fault plan on its own thread, then polling every job to a final state.
- `effects`: every event that went out, per channel (SNS tap, console, webhook).
- `ledger`: every accepted upload reconciled with its rows, objects and events.
"""
