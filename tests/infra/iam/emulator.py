"""moto's standalone server with three corrections to its IAM simulation (moto 5.2.5).

Usage: python emulator.py -H 127.0.0.1 -p PORT   (the arguments of `moto_server`)

Each one makes moto judge a request the way AWS does; none of them allows anything AWS would
refuse. Without them the worker cannot finish a job under its real policy on moto, and the
least-privilege test could not tell a missing grant from an emulator gap.

1. Resources for SNS and KMS. moto matches a statement's Resource against the resource the
   request names, which every service except S3 reports through `_determine_resource`; in
   moto 5.2.5 only SQS (the queue ARN), IAM and STS define it. SNS and KMS requests are matched
   against "*", which only a Resource of "*" covers, so a policy scoped to one topic or one key,
   as ours are, is refused every SNS and KMS call, even on that topic or key. Added here, the
   way moto does it for SQS: SNS uses the request's TopicArn, else TargetArn; KMS the ARN of the
   key named by KeyId (key id, key ARN, alias name or ARN), or for Decrypt without KeyId the key
   recorded in the ciphertext; "*" when there is none.
2. Batch actions. AWS authorizes SendMessageBatch, DeleteMessageBatch and
   ChangeMessageVisibilityBatch as sqs:SendMessage, sqs:DeleteMessage and
   sqs:ChangeMessageVisibility, and sns:PublishBatch as sns:Publish; there is no IAM action
   sqs:DeleteMessageBatch. moto checks them under their own names, so the worker's batched
   acknowledgements were refused.
3. Signatures of form-encoded requests (query protocol: SNS, IAM, STS). moto checks SigV4 over a
   body it rebuilds from the parsed form with Python's urlencode instead of the bytes received,
   so a client that encodes the same form differently fails with SignatureDoesNotMatch although
   it signed correctly: the AWS SDK for Rust writes a space as %20 where urlencode writes "+",
   and every Publish of the worker (its Subject has a space) was refused. Here the request keeps
   the bytes it arrived with, and the signature is checked over what the client signed; a wrong
   secret still fails (test_form_encoded_signatures_are_checked_over_the_sent_bytes).

4. Resources for Secrets Manager, as for SNS and KMS: the ARN of the secret the request's
   SecretId names (an ARN or a name), so that the execution role's grant on exactly its
   secrets can be judged (tests/infra/parity, which injects a task's secrets as ECS does).

Everything else (which requests are checked, the signature check itself, policy evaluation)
stays moto's own. install() refuses to run if moto ever defines the SNS or KMS lookup itself.
"""

from __future__ import annotations

import sys

from moto.core.responses import BaseResponse
from moto.iam.access_control import IAMRequestBase
from moto.kms.responses import KmsResponse
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.server import main
from moto.sns.responses import SNSResponse

# moto's ciphertext blob starts with the 36-character key id (moto/kms/utils.py KEY_ID_LEN).
_MOTO_KEY_ID_LEN = 36


def _sns_resource(self: SNSResponse) -> str:
    return self._get_param("TopicArn") or self._get_param("TargetArn") or "*"


def _kms_resource(self: KmsResponse) -> str:
    try:
        key_id = self._get_param("KeyId")
        if not key_id:
            blob = self._get_param("CiphertextBlob")
            if not blob:
                return "*"
            key_id = blob[:_MOTO_KEY_ID_LEN].decode("ascii")
        return self.kms_backend.describe_key(key_id).arn
    except Exception:  # unknown key, alias or blob: let moto answer as it would
        return "*"


def _secret_resource(self: SecretsManagerResponse) -> str:
    try:
        secret_id = self._get_param("SecretId")
        if not secret_id:
            return "*"
        return self.backend.describe_secret(secret_id).arn
    except Exception:  # unknown secret: let moto answer as it would
        return "*"


# The IAM action AWS checks for each batch API.
BATCH_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sns:PublishBatch": "sns:Publish",
}

_iam_request_init = IAMRequestBase.__init__


def _iam_request_init_with_batch_actions(self, *args, **kwargs):
    _iam_request_init(self, *args, **kwargs)
    self._action = BATCH_ACTIONS.get(self._action, self._action)


_setup_class = BaseResponse.setup_class


def _setup_class_keeping_the_signed_body(self, request, *args, **kwargs):
    if request.mimetype == "application/x-www-form-urlencoded" and self.service_name != "s3":
        # Cache the raw bytes before anything parses the form: werkzeug then parses .form from
        # the cache and .data returns the bytes, which moto hands to its signature check.
        request.get_data(cache=True)
    return _setup_class(self, request, *args, **kwargs)


def install() -> None:
    IAMRequestBase.__init__ = _iam_request_init_with_batch_actions  # type: ignore[method-assign]
    BaseResponse.setup_class = _setup_class_keeping_the_signed_body  # type: ignore[method-assign]
    resolvers = ((SNSResponse, _sns_resource), (KmsResponse, _kms_resource), (SecretsManagerResponse, _secret_resource))
    for cls, resolver in resolvers:
        if hasattr(cls, "_determine_resource"):
            raise SystemExit(f"moto now defines {cls.__name__}._determine_resource: drop this shim")
        cls._determine_resource = resolver  # type: ignore[attr-defined]


if __name__ == "__main__":
    install()
    sys.exit(main(sys.argv[1:]))
