"""The AWS deploy-and-run sequence of docs/aws.md, against a local moto server.

Starts `moto_server` on a free port, points every client at it with AWS_ENDPOINT_URL (as an
operator would point at AWS), creates what an account would already hold (the lake bucket, the
alert topic), writes config/aws.yaml into a scratch directory, then runs, as a user types them:

    rentalctl --profile aws iam-policy glue-job
    rentalctl --profile aws seed-bookmarks
    rentalctl --profile aws upload-scripts          (twice: the second changes nothing)
    rentalctl --profile aws deploy-sfn              (twice: the second changes nothing)
    rentalctl --profile aws run
    rentalctl --profile aws status RUN_ID

One step is moto's, not the product's: moto cannot run `glue:startJobRun.sync` tasks, so after
`deploy-sfn` the script re-deploys the same definition with plain `glue:startJobRun` tasks
(moto's Glue completes job runs without running them). Everything else is what AWS would see.

    .venv/bin/python scripts/moto_e2e.py
Exits 0 when every step behaved as documented.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # moto's one stand-in is shared with the tests

from tests.support.moto_aws import NAME, REGION, glue_sync_stand_in  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(bucket: str) -> str:
    text = (REPO / "config" / "aws.example.yaml").read_text()
    text = text.replace("s3://my-rental-lake/rentalctl", f"s3://{bucket}/rentalctl")
    text = text.replace("eu-west-1", REGION)  # the example's account is moto's already
    # Glue jobs on moto have no network to a database; the URL is still checked.
    return text


def main() -> int:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        # Let moto's Step Functions really execute state machines.
        request = urllib.request.Request(
            f"{endpoint}/moto-api/config",
            method="POST",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        )
        urllib.request.urlopen(request, timeout=5)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RENTALCTL_"))}
        env.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
        )
        return sequence(env)
    finally:
        server.terminate()
        server.wait(timeout=10)


def sequence(env: dict[str, str]) -> int:
    import boto3

    session = boto3.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    url = env["AWS_ENDPOINT_URL"]
    session.client("s3", endpoint_url=url).create_bucket(
        Bucket="rental-lake", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    session.client("sns", endpoint_url=url).create_topic(Name="rentalctl-alerts")

    with tempfile.TemporaryDirectory(prefix="rentalctl-moto-") as work:
        cwd = Path(work)
        (cwd / "config").mkdir()
        (cwd / "config" / "aws.yaml").write_text(config_text("rental-lake"))
        # upload-scripts downloads the Glue jobs' wheels into <home>/cache once: keep that cache
        # between runs (the repository's .rentalctl/, ignored by git).
        (REPO / ".rentalctl" / "cache").mkdir(parents=True, exist_ok=True)
        (cwd / ".rentalctl").mkdir()
        (cwd / ".rentalctl" / "cache").symlink_to(REPO / ".rentalctl" / "cache")

        def rentalctl(*args: str) -> dict:
            argv = [sys.executable, "-m", "rentalctl", "--profile", "aws", "-o", "json", *args]
            print("$ rentalctl --profile aws " + " ".join(args), flush=True)
            done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                raise SystemExit(f"step failed ({done.returncode}): rentalctl {' '.join(args)}")
            return json.loads(done.stdout)

        policy = rentalctl("iam-policy", "glue-job")
        assert policy["Version"] == "2012-10-17"
        rentalctl("seed-bookmarks")
        first, second = rentalctl("upload-scripts"), rentalctl("upload-scripts")
        print(f"  upload-scripts: {_summary(first)}; again: {_summary(second)}")
        assert first["done"]["uploaded"] and first["done"]["created"], first
        assert second["done"] == {"uploaded": [], "created": [], "updated": []}, second
        first, second = rentalctl("deploy-sfn"), rentalctl("deploy-sfn")
        print(f"  deploy-sfn: {_summary(first)}; again: {_summary(second)}")
        assert first["done"] and second["done"] == [], (first, second)
        _stand_in_glue_sync(session, url)
        run = rentalctl("run", "--run-id", "moto-e2e-1")
        print(f"  run: {run['status']}, {len(run['states'])} states")
        status = rentalctl("status", "moto-e2e-1")
        assert status["status"] == "SUCCEEDED", status
        assert [s["name"] for s in status["states"]] == [s["name"] for s in run["states"]]
        print("  status: SUCCEEDED, states from the execution history")
    print("the documented sequence works against moto")
    return 0


def _summary(doc: dict) -> str:
    """A short account of what a deploy command did."""
    text = json.dumps(doc.get("done", doc.get("actions", doc)))
    return text if len(text) < 160 else text[:157] + "..."


def _stand_in_glue_sync(session: object, url: str) -> None:
    """moto's only: re-deploy with plain startJobRun instead of .sync (see the docstring)."""
    sfn = session.client("stepfunctions", endpoint_url=url)  # type: ignore[attr-defined]
    (machine,) = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == NAME]
    definition = json.loads(
        sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])["definition"]
    )

    sfn.update_state_machine(
        stateMachineArn=machine["stateMachineArn"],
        definition=json.dumps(glue_sync_stand_in(definition)[0]),
    )


if __name__ == "__main__":
    raise SystemExit(main())
