"""The serverless spec's callback handler, as it describes it: psycopg 3, a module-level
connection reused while the sandbox is warm, one INSERT ... RETURNING id. (The peer of
cafe24-lambda's `http` handler in bench/lambda.sh; it does less — no state signature check.)
"""
import json
import os

import psycopg

conn = psycopg.connect(
    host=os.environ["PGHOST"],
    port=os.environ.get("PGPORT", "5432"),
    user=os.environ["PGUSER"],
    password=os.environ.get("PGPASSWORD", ""),
    dbname=os.environ["PGDATABASE"],
    autocommit=True,
)


def reply(status, body):
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body)}


def handler(event, context):
    global conn
    params = event.get("queryStringParameters") or {}
    code, state = params.get("code"), params.get("state")
    if not code or not state:
        return reply(400, {"ok": False, "message": "code and state are required"})
    try:
        if conn.closed:
            conn = psycopg.connect(conn.info.dsn, password=os.environ.get("PGPASSWORD", ""),
                                   autocommit=True)
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO cafe24.authorization_codes (code, state) VALUES (%s, %s) RETURNING id",
                (code, state),
            )
            (row_id,) = cur.fetchone()
    except psycopg.OperationalError:
        return reply(503, {"ok": False, "message": "database unavailable"})
    return reply(200, {"ok": True, "message": "Saved", "id": row_id})
