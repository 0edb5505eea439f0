"""Create the tables, the verified sender and the configuration set in a moto server.

Used by `make run` and by the test fixtures. The table shapes here must match
`infra/resources.yaml` (a test checks that they do).
"""

from __future__ import annotations

import os
from typing import Any

import boto3

ORDERS_GSI_OUTBOX = "outbox"
ORDERS_GSI_ADMIN = (("by_day", "day"), ("by_status", "status"), ("by_email", "email_key"))


def table_definitions(orders: str, suppression: str, rate_limits: str) -> list[dict[str, Any]]:
    """The CreateTable requests for every table the app uses."""
    return [
        {
            "TableName": orders,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "outbox", "AttributeType": "S"},
                {"AttributeName": "due_at", "AttributeType": "N"},
                {"AttributeName": "day", "AttributeType": "S"},
                {"AttributeName": "status", "AttributeType": "S"},
                {"AttributeName": "email_key", "AttributeType": "S"},
                {"AttributeName": "created_at", "AttributeType": "N"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": ORDERS_GSI_OUTBOX,
                    "KeySchema": [
                        {"AttributeName": "outbox", "KeyType": "HASH"},
                        {"AttributeName": "due_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                },
                # the back office (issue 15): newest first by day, by status, by customer
                *(
                    {
                        "IndexName": name,
                        "KeySchema": [
                            {"AttributeName": hash_key, "KeyType": "HASH"},
                            {"AttributeName": "created_at", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                    for name, hash_key in ORDERS_GSI_ADMIN
                ),
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
        {
            "TableName": suppression,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "listed", "AttributeType": "S"},
                {"AttributeName": "suppressed_at", "AttributeType": "N"},
            ],
            # the back office's list, newest first (sparse: suppression rows only)
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "recent",
                    "KeySchema": [
                        {"AttributeName": "listed", "KeyType": "HASH"},
                        {"AttributeName": "suppressed_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
        {
            "TableName": rate_limits,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    ]


def bootstrap(endpoint_url: str, env: dict[str, str] | None = None) -> None:
    """Idempotently create everything the app expects in the moto server at endpoint_url."""
    env = dict(os.environ if env is None else env)
    kw = {
        "endpoint_url": endpoint_url,
        "region_name": env.get("AWS_REGION", "us-east-1"),
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    ddb = boto3.client("dynamodb", **kw)
    existing = set(ddb.list_tables()["TableNames"])
    defs = table_definitions(
        env.get("ORDERS_TABLE", "orders"),
        env.get("SUPPRESSION_TABLE", "suppression"),
        env.get("RATE_LIMIT_TABLE", "rate-limits"),
    )
    for d in defs:
        if d["TableName"] not in existing:
            ddb.create_table(**d)
    # every table expires items on `expires_at` (orders: idempotency records), as in AWS
    for name in (d["TableName"] for d in defs):
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    ses = boto3.client("sesv2", **kw)
    identities = {i["IdentityName"] for i in ses.list_email_identities().get("EmailIdentities", [])}
    sender = env.get("SENDER_EMAIL", "orders@juice.example.com")
    if sender not in identities:
        ses.create_email_identity(EmailIdentity=sender)
    cs = env.get("SES_CONFIGURATION_SET", "orders")
    if cs not in ses.list_configuration_sets().get("ConfigurationSets", []):
        ses.create_configuration_set(ConfigurationSetName=cs)
    topic = boto3.client("sns", **kw)
    topic.create_topic(Name="ses-feedback")


if __name__ == "__main__":
    bootstrap(os.environ["AWS_ENDPOINT_URL"])
    print("bootstrapped", os.environ["AWS_ENDPOINT_URL"])
