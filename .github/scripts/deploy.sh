#!/usr/bin/env bash
# The steps of a production release that Terraform does not do. The deploy job
# of .github/workflows/release.yml runs them with the env root's outputs
# (`terraform output -json > OUTPUTS`):
#
#   deploy.sh image OUTPUTS VERSION   the image VERSION is in the ECR repository
#                                     terraform runs the tasks from
#   deploy.sh migrate OUTPUTS         run the migrate task once, wait until it
#                                     stops, fail unless its container exited 0
#   deploy.sh verify OUTPUTS          wait until every service is stable, then
#                                     fail if one runs another task definition
#                                     than the apply gave it
#
# Needs the AWS CLI v2 (credentials and region from the environment) and jq.
# tests/infra/release/test_deploy.py runs it against a stand-in `aws`.
set -euo pipefail

die() { echo "::error::$*" >&2; exit 1; }

output() {
  jq -er --arg name "$2" '.[$name].value' "$1" \
    || die "terraform output $2 is missing; has the first deploy (docs/deploy.md) been done?"
}

# AWS CLI waiters give up after a fixed number of polls (tasks-stopped: 100 x 6 s;
# services-stable: 40 x 15 s). A long migration, or a rolling deployment that
# drains connections and passes health checks task by task, can outlast one
# round; the job's timeout-minutes is the real bound.
wait_rounds() {
  local round
  for round in 1 2 3; do
    "$@" && return 0
    echo "not there yet after waiter round $round"
  done
  return 1
}

image() {
  local outputs="$1" version="$2" repository
  repository="$(output "$outputs" ecr_repository_url)"
  repository="${repository#*/}"
  aws ecr describe-images --repository-name "$repository" --image-ids "imageTag=$version" >/dev/null \
    || die "image $repository:$version is not in the deployed registry; RELEASE_TARGETS must include the ecr_repository_url output"
  echo "found $repository:$version"
}

migrate() {
  local outputs="$1" cluster definition network started task stopped exit_code
  cluster="$(output "$outputs" ecs_cluster_name)"
  definition="$(output "$outputs" migrate_task_definition_arn)"
  network="$(jq -ce '{awsvpcConfiguration: .ops_task_network.value}' "$outputs")"
  started="$(aws ecs run-task --cluster "$cluster" --launch-type FARGATE --task-definition "$definition" \
    --network-configuration "$network" --started-by release --output json)"
  task="$(jq -r '.tasks[0].taskArn // empty' <<<"$started")"
  [ -n "$task" ] || die "the migrate task did not start: $(jq -c '.failures' <<<"$started")"
  echo "migrate task $task started"
  wait_rounds aws ecs wait tasks-stopped --cluster "$cluster" --tasks "$task" \
    || die "migrate task $task did not stop in time"
  stopped="$(aws ecs describe-tasks --cluster "$cluster" --tasks "$task" --output json)"
  # A task that never ran its container (image pull, secrets) has no exit code at all.
  exit_code="$(jq -r '.tasks[0].containers[0].exitCode // "none"' <<<"$stopped")"
  [ "$exit_code" = 0 ] || die "migrate exited with code $exit_code ($(jq -r '.tasks[0].stoppedReason // ""' <<<"$stopped")); log stream migrate/migrate/${task##*/} in the ops log group"
  echo "migrate exited 0"
}

verify() {
  local outputs="$1" cluster expected deployed service want running status=0
  local -a services
  cluster="$(output "$outputs" ecs_cluster_name)"
  expected="$(jq -ce '.service_task_definitions.value' "$outputs")"
  mapfile -t services < <(jq -r 'keys[]' <<<"$expected")
  wait_rounds aws ecs wait services-stable --cluster "$cluster" --services "${services[@]}" \
    || die "services ${services[*]} did not become stable"
  # A deployment the circuit breaker rolled back is stable too, on the previous
  # task definition: only the definition in use tells the two apart.
  deployed="$(aws ecs describe-services --cluster "$cluster" --services "${services[@]}" --output json)"
  for service in "${services[@]}"; do
    want="$(jq -r --arg s "$service" '.[$s]' <<<"$expected")"
    running="$(jq -r --arg s "$service" \
      '.services[] | select(.serviceName == $s) | .deployments[] | select(.status == "PRIMARY") | .taskDefinition' <<<"$deployed")"
    if [ "$running" = "$want" ]; then
      echo "$service runs $want"
    else
      echo "::error::$service runs ${running:-nothing}, not $want: its deployment was rolled back (see the service's events)" >&2
      status=1
    fi
  done
  return "$status"
}

case "${1:-}" in
  image) [ $# -eq 3 ] || die "usage: $0 image OUTPUTS VERSION"; image "$2" "$3" ;;
  migrate) [ $# -eq 2 ] || die "usage: $0 migrate OUTPUTS"; migrate "$2" ;;
  verify) [ $# -eq 2 ] || die "usage: $0 verify OUTPUTS"; verify "$2" ;;
  *) die "usage: $0 image|migrate|verify OUTPUTS [VERSION]" ;;
esac
