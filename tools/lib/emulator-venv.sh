# Sourced by scripts/check-iam and scripts/check-parity: the shared .venv/iam (moto with the test
# suite's exact pins, pytest, the HCL parser), re-installed when a requirements file changes, and
# an AWS environment that can reach no real account. Sets $venv and $IMAGE_SERVICE_BIN.
# Expects to run from the repository root.

venv="$PWD/.venv/iam"
stamp="$venv/.requirements.sha256"

target="${CARGO_TARGET_DIR:-$HOME/.cache/image-service/target}"
export IMAGE_SERVICE_BIN="${IMAGE_SERVICE_BIN:-$target/debug/image-service}"
if [[ ! -x "$IMAGE_SERVICE_BIN" ]]; then
  echo "error: $IMAGE_SERVICE_BIN is missing; build it (scripts/test does) or set IMAGE_SERVICE_BIN" >&2
  exit 1
fi

if [[ -x "$venv/bin/python" ]] && ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  echo "==> $venv is broken; recreating it"
  rm -rf "$venv"
fi
if [[ ! -x "$venv/bin/python" ]]; then
  echo "==> creating $venv"
  python3 -m venv "$venv"
fi
want=$(cat tools/python/iam.txt tools/python/test.txt | sha256sum | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "==> installing tools/python/iam.txt into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tools/python/iam.txt
  echo "$want" > "$stamp"
fi

# Keep any real account, profile or config out of the check.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
