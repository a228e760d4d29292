"""The one library of the repository's Python tools (issue 19).

- `harness.ports`: free TCP ports on the loopback interface.
- `harness.procs`: starting and stopping processes (the emulator, the service binary),
  and waiting until they serve.
- `harness.aws`: the AWS resources the service expects (key, bucket, job queue and
  dead-letter queue, event topic and its subscriber queue), made in the emulator.

Callers: tools/bench/pipeline.py, tools/chaos/chaos.py, tests/infra/iam/conftest.py and
docker/init-aws.py. The last runs in the moto image as the compose `init` service, with
this folder mounted at /tools/lib beside /docker/init-aws.py, so the library needs nothing
beyond the standard library and boto3 (and boto3 only in `harness.aws`: `ports` and
`procs` also serve tools run by the system's python3, such as tools/bench/backlog.py).

A caller finds it from its own place in the repository:

    sys.path.insert(0, str(Path(__file__).resolve().parents[N] / "tools" / "lib"))
"""
