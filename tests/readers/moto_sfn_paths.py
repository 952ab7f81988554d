#!/usr/bin/env python3
"""Run state machine definitions on moto's Step Functions engine and print what happened.

    moto_sfn_paths.py ENDPOINT --case NAME DEFINITION.json INPUT_JSON [--case ...] [--timeout SECONDS]

ENDPOINT is a running moto server (`python -m moto.server -H 127.0.0.1 -p PORT`). Its Step
Functions engine is switched on first (POST /moto-api/config), then, for each case: the
definition is created as a state machine, one execution runs with the input, the script waits
(bounded) for it to end and reads `get_execution_history`. Prints one JSON object on stdout:

    {"NAME": {"status": "SUCCEEDED", "output": {...} | null, "error": str | null,
              "cause": str | null, "path": ["State", ...]}, ...}

`path` is the ordered list of `stateEnteredEventDetails.name` of the history. Exit 0 when every
case ended (whatever its status), 1 when one did not end in time or the server misbehaved.
"""

import argparse
import json
import sys
import time
import urllib.request

import boto3
from botocore.config import Config

ROLE = "arn:aws:iam::123456789012:role/egress-asl-tests"


def engine_on(endpoint: str) -> None:
    body = json.dumps({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}).encode()
    req = urllib.request.Request(
        endpoint.rstrip("/") + "/moto-api/config", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def history(sfn, arn: str) -> list:
    events, token = [], None
    while True:
        kwargs = {"executionArn": arn, "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return sorted(events, key=lambda e: e["id"])


def start_case(sfn, name: str, definition: str, payload: str) -> str:
    machine = sfn.create_state_machine(name=f"asl-{name}-{time.time_ns()}", definition=definition, roleArn=ROLE)
    return sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=f"run-{name}", input=payload)["executionArn"]


def finish_case(sfn, name: str, arn: str, deadline: float) -> dict:
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"case {name}: the execution was still RUNNING at the deadline")
        time.sleep(0.05)
    events = history(sfn, arn)
    path = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    # The output as the history records it: describe_execution's `output` is not always JSON
    # on moto (a string result comes back unquoted).
    output = next((e["executionSucceededEventDetails"].get("output") for e in events if "executionSucceededEventDetails" in e), None)
    return {
        "status": desc["status"],
        "output": json.loads(output) if output is not None else None,
        "error": desc.get("error"),
        "cause": desc.get("cause"),
        "path": path,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint")
    parser.add_argument("--case", nargs=3, action="append", metavar=("NAME", "DEFINITION", "INPUT_JSON"), default=[])
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for all executions to end")
    args = parser.parse_args()

    engine_on(args.endpoint)
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
    )
    results, started = {}, []
    try:
        # Start every execution first: they run side by side on the server, so the cases'
        # waits and retry intervals overlap.
        for name, definition_path, payload in args.case:
            with open(definition_path, encoding="utf-8") as f:
                definition = f.read()
            json.loads(payload)  # the input must be JSON
            started.append((name, start_case(sfn, name, definition, payload)))
        deadline = time.monotonic() + args.timeout
        for name, arn in started:
            results[name] = finish_case(sfn, name, arn, deadline)
    except Exception as e:  # report what ran, then fail: the caller fails the test
        print(json.dumps(results))
        print(f"moto_sfn_paths.py: {e}", file=sys.stderr)
        return 1
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
