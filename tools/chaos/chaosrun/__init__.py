"""The chaos harness's parts (tools/chaos/chaos.py runs them in this order):

- `cluster`: the emulator behind a proxy, its resources, a Postgres database, the API
  and the workers, and the one fault the harness injects into them (SIGKILL a worker).
- `proxy`: the TCP proxy in front of the emulator that can be cut off.
- `load`: uploads through the API, duplicate sends and the outage while they run, then
  polling every job to a final state (killing on for a while).
- `effects`: what the run did, counted per job: final states, events, objects.
"""
