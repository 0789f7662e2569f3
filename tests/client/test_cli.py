"""The command line: argument parsing, output, exit codes, progress display (against a scripted server)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from client import cli, exit_codes
from client.errors import AuthenticationError
from client.models import JobStatus
from client.progress import Progress
from devhost.azurite import PROJECT_ROOT, free_port
from tests.client.fake_api import JOB_ID, SUBJECT_ID, FakeApi, accepted_body, status_body
from tests.support import AUDIENCE, TENANT

STATUS = f"/api/jobs/{JOB_ID}/status"


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def run(api: FakeApi | None, *argv: str, **env: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    environment = {"JOBS_AUTH_TENANTS": TENANT, "JOBS_AUTH_AUDIENCES": AUDIENCE, "HOME": "/nonexistent", **env}
    if api is not None:
        environment.setdefault("JOBS_BASE_URL", api.url)
    code = cli.main(list(argv), env=environment, stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


# ---- parsing --------------------------------------------------------------------------------------

def test_global_options_go_before_or_after_the_command() -> None:
    parser = cli.build_parser({"JOBS_BASE_URL": "http://from-env:1"})
    before = parser.parse_args(["--json", "--base-url", "http://a:1", "--auth", "dev", "status", JOB_ID])
    after = parser.parse_args(["status", JOB_ID, "--json", "--base-url", "http://a:1", "--auth", "dev"])
    for args in (before, after):
        assert (args.json, args.base_url, args.auth, args.job) == (True, "http://a:1", "dev", JOB_ID)
    default = parser.parse_args(["wait", JOB_ID])
    assert (default.json, default.base_url, default.auth, default.timeout) == (False, "http://from-env:1", None, None)
    assert cli.build_parser({}).parse_args(["list"]).base_url == "http://127.0.0.1:7071"


def test_submit_arguments(tmp_path: Path) -> None:
    parser = cli.build_parser({})
    args = parser.parse_args(["submit", "--type", "doc-index", "--subject", SUBJECT_ID.upper(),
                              "--payload", '{"rowVersion": 1}', "--wait", "--timeout", "30"])
    assert (args.type, args.subject, args.payload, args.wait, args.timeout) == (
        "doc-index", SUBJECT_ID, {"rowVersion": 1}, True, 30.0)
    payload = tmp_path / "payload.json"
    payload.write_text('{"action": "index"}')
    assert parser.parse_args(["submit", "--type", "t", "--subject", SUBJECT_ID, "--payload", f"@{payload}"]
                             ).payload == {"action": "index"}


@pytest.mark.parametrize("argv", [
    ["submit", "--type", "t", "--subject", "not-a-guid"],
    ["submit", "--type", "t", "--subject", SUBJECT_ID, "--payload", "[1, 2]"],
    ["submit", "--type", "t", "--subject", SUBJECT_ID, "--payload", "{nope"],
    ["list", "--status", "Sleeping"],
    ["list", "--page-size", "0"],
    ["wait", JOB_ID, "--timeout", "-1"],
    ["status"],
    [],
    ["status", JOB_ID, "--auth", "password"],
])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.build_parser({}).parse_args(argv)
    assert raised.value.code == exit_codes.USAGE
    assert "error:" in capsys.readouterr().err


# ---- commands -------------------------------------------------------------------------------------

def test_submit_without_a_type_or_a_file_exits_2(fake_api: FakeApi) -> None:
    done = run(fake_api, "submit", "--subject", SUBJECT_ID, "--auth", "dev")
    assert done.code == exit_codes.USAGE and "--type and --subject" in done.err
    assert not fake_api.seen()


def test_submit_from_a_jsonl_file_sends_batches_and_prints_a_line_per_job(fake_api: FakeApi,
                                                                          tmp_path: Path) -> None:
    lines = [json.dumps({"jobType": "doc-index", "subjectId": SUBJECT_ID, "payload": {"n": n}}) for n in range(150)]
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("\n".join(lines[:120]) + "\n\n" + "\n".join(lines[120:]) + "\n")
    first = [{"index": i, "status": 202, "jobId": f"j{i}", "jobStatus": "Queued", "replayed": i == 1}
             for i in range(100)]
    second = [{"index": i, "status": 202, "jobId": f"k{i}", "jobStatus": "Queued"} for i in range(49)]
    second.append({"index": 49, "status": 429, "problem": {"code": "QUOTA_EXCEEDED", "detail": "at most 100"}})
    fake_api.add("POST", "/api/jobs/batch", 207, {"items": first})
    fake_api.add("POST", "/api/jobs/batch", 207, {"items": second})
    done = run(fake_api, "submit", "--from-file", str(jobs_file), "--auth", "dev")
    sent = [seen.json()["jobs"] for seen in fake_api.seen("POST", "/api/jobs/batch")]
    assert [len(batch) for batch in sent] == [100, 50] and sent[1][0]["payload"] == {"n": 100}
    out = done.out.splitlines()
    assert out[0] == "1 j0 Queued" and out[1] == "2 j1 Queued (replayed)"
    assert out[-1] == "151 QUOTA_EXCEEDED: at most 100"  # line numbers of the file (line 121 is blank)
    assert done.code == exit_codes.API_ERROR  # one was refused


def test_a_jsonl_line_that_is_not_an_object_is_a_usage_error(fake_api: FakeApi, tmp_path: Path) -> None:
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text('{"jobType": "x"}\n[1]\n')
    done = run(fake_api, "submit", "--from-file", str(jobs_file), "--auth", "dev")
    assert done.code == exit_codes.USAGE and ":2: each line must be a JSON object" in done.err
    assert not fake_api.seen()

def test_submit_prints_the_job_id_first(fake_api: FakeApi) -> None:
    fake_api.add("POST", "/api/jobs", 202, accepted_body(), headers={"Idempotent-Replayed": "true"})
    result = run(fake_api, "submit", "--type", "doc-index", "--subject", SUBJECT_ID, "--payload", '{"rowVersion":1}')
    assert result.code == 0
    assert result.out.split()[0] == JOB_ID and "Queued" in result.out and "replayed" in result.out
    [seen] = fake_api.requests
    assert seen.headers["authorization"].startswith("Bearer ey")  # a dev token (loopback URL)


def test_json_output_is_the_server_body(fake_api: FakeApi) -> None:
    body = status_body("Running", percentComplete=50, somethingNew={"a": 1})
    fake_api.add("GET", STATUS, 200, body, headers={"Retry-After": "2"})
    result = run(fake_api, "status", JOB_ID, "--json")
    assert result.code == 0 and json.loads(result.out) == body


def test_status_prints_details_and_history(fake_api: FakeApi) -> None:
    fake_api.add("GET", STATUS, 200, status_body(
        "Failed", outcome={"code": "SUBJECT_NOT_FOUND", "detail": "documents/x is missing"},
        history=[{"version": 1, "from": None, "to": "Queued", "attempt": 0, "at": "2025-01-02T03:04:05Z",
                  "reason": "Submitted"}]))
    result = run(fake_api, "status", JOB_ID, "--history")
    assert result.code == 0
    assert "SUBJECT_NOT_FOUND: documents/x is missing" in result.out
    assert "v1 2025-01-02T03:04:05+00:00 - -> Queued (attempt 0) Submitted" in result.out
    assert fake_api.requests[0].query == {"history": ["true"]}


def test_api_errors_print_code_detail_and_correlation_id(fake_api: FakeApi) -> None:
    fake_api.problem("POST", "/api/jobs", 400, "PAYLOAD_INVALID", "The payload does not match",
                     errors=[{"field": "rowVersion", "message": "Field required"}])
    result = run(fake_api, "submit", "--type", "doc-index", "--subject", SUBJECT_ID)
    assert result.code == exit_codes.API_ERROR and result.out == ""
    assert result.err.splitlines() == [
        "PAYLOAD_INVALID: The payload does not match (correlation id 11111111-2222-4333-8444-555555555555)",
        "  rowVersion: Field required",
    ]


def test_cancel_of_a_terminal_job_exits_1(fake_api: FakeApi) -> None:
    fake_api.problem("POST", f"/api/jobs/{JOB_ID}/cancel", 409, "JOB_ALREADY_TERMINAL", "the job is Completed")
    result = run(fake_api, "cancel", JOB_ID)
    assert result.code == 1 and result.err.startswith("JOB_ALREADY_TERMINAL: the job is Completed (correlation id")


def test_cancel_of_a_running_job_says_cancel_requested(fake_api: FakeApi) -> None:
    fake_api.add("POST", f"/api/jobs/{JOB_ID}/cancel", 202, status_body("Running", cancelRequested=True))
    result = run(fake_api, "cancel", JOB_ID)
    assert result.code == 0 and result.out.strip() == f"{JOB_ID} Running (cancel requested)"


@pytest.mark.parametrize(("final", "code"), [
    ("Completed", exit_codes.OK), ("Failed", exit_codes.FAILED), ("Poisoned", exit_codes.POISONED),
    ("Cancelled", exit_codes.CANCELLED),
])
def test_wait_exit_code_tells_how_the_job_ended(fake_api: FakeApi, final: str, code: int) -> None:
    fake_api.add("GET", STATUS, 200, status_body(final, outcome={"code": "X", "detail": "how it ended"}))
    result = run(fake_api, "wait", JOB_ID)
    assert result.code == code and result.out.strip() == f"{JOB_ID} {final} X: how it ended"


def test_wait_prints_plain_progress_lines_when_not_a_tty(fake_api: FakeApi) -> None:
    fake_api.add("GET", STATUS, 200, status_body("Running", percentComplete=40, progressMessage="indexing"),
                 headers={"Retry-After": "0"})
    fake_api.add("GET", STATUS, 200, status_body("Running", percentComplete=40, progressMessage="indexing"),
                 headers={"Retry-After": "0"})
    fake_api.add("GET", STATUS, 200, status_body("Completed", percentComplete=100))
    result = run(fake_api, "wait", JOB_ID, "--json")
    lines = result.err.splitlines()
    assert result.code == 0 and len(lines) == 2  # one line per change, not per poll
    assert lines[0].endswith("s Running 40% indexing") and lines[1].endswith("s Completed 100%")
    assert json.loads(result.out)["status"] == "Completed"


def test_wait_timeout_exits_6_and_json_shows_the_last_status(fake_api: FakeApi) -> None:
    fake_api.add("GET", STATUS, 200, status_body("Running"), headers={"Retry-After": "1"})
    result = run(fake_api, "wait", JOB_ID, "--timeout", "0.3", "--json")
    assert result.code == exit_codes.TIMEOUT
    assert json.loads(result.out)["status"] == "Running"
    assert f"WAIT_TIMEOUT: job {JOB_ID} is still Running after 0.3s" in result.err


def test_submit_wait_follows_the_job(fake_api: FakeApi) -> None:
    fake_api.add("POST", "/api/jobs", 202, accepted_body())
    fake_api.add("GET", STATUS, 200, status_body("Failed", outcome={"code": "SUBJECT_NOT_FOUND", "detail": "x"}))
    result = run(fake_api, "submit", "--type", "doc-index", "--subject", SUBJECT_ID, "--wait")
    assert result.code == exit_codes.FAILED and "SUBJECT_NOT_FOUND" in result.out
    assert result.err.startswith(f"{JOB_ID} Queued")


def test_retry_prints_the_accepted_job(fake_api: FakeApi) -> None:
    fake_api.add("POST", f"/api/jobs/{JOB_ID}/retry", 202, accepted_body())
    assert run(fake_api, "retry", JOB_ID).out.strip() == f"{JOB_ID} Queued"


def test_list_prints_a_table_and_tells_about_more_pages(fake_api: FakeApi) -> None:
    fake_api.add("GET", "/api/jobs", 200, {"items": [status_body("Completed")], "continuationToken": "n 2"})
    result = run(fake_api, "list", "--status", "Completed", "--type", "doc-index", "--page-size", "1")
    assert result.code == 0
    header, row = result.out.splitlines()
    assert header.startswith("JOB ID") and row.startswith(f"{JOB_ID}  Completed  doc-index")
    assert "--continuation-token 'n 2'" in result.err
    assert fake_api.requests[0].query == {"status": ["Completed"], "jobType": ["doc-index"], "pageSize": ["1"]}


def test_list_columns_are_aligned_and_times_are_printed_as_the_api_prints_them(fake_api: FakeApi) -> None:
    other = "0b0b0b0b-0000-4000-8000-000000000002"
    fake_api.add("GET", "/api/jobs", 200, {"items": [
        status_body("Completed", createdAt="2025-01-02T03:04:05.678Z"),
        status_body("Failed", jobId=other, jobType="[bold]ai-analyze:smile:", subjectId=None,
                    createdAt="2025-01-02T05:04:05+02:00"),
    ]})
    result = run(fake_api, "list")
    lines = result.out.splitlines()
    assert len(lines) == 3 and all(line == line.rstrip() for line in lines)
    header, first, second = lines
    starts = [header.index(name) for name in ("STATUS", "TYPE", "CREATED", "SUBJECT")]
    first_values = ("Completed", "doc-index", "2025-01-02T03:04:05.678Z", SUBJECT_ID)
    second_values = ("Failed", "[bold]ai-analyze:smile:", "2025-01-02T03:04:05.000Z")  # markup printed as it is
    assert [first.index(value) for value in first_values] == starts
    assert [second.index(value) for value in second_values] == starts[:3]  # another offset becomes UTC
    assert second.startswith(f"{other}  Failed ") and second.endswith("2025-01-02T03:04:05.000Z")


def test_list_rows_are_never_wrapped_in_a_pipe(fake_api: FakeApi) -> None:
    long_type = "a-very-long-job-type-" * 8
    fake_api.add("GET", "/api/jobs", 200, {"items": [status_body("Running", jobType=long_type)]})
    _, row = run(fake_api, "list").out.splitlines()
    assert long_type in row and row.endswith(SUBJECT_ID) and len(row) > 200


def test_list_all_json_follows_every_page(fake_api: FakeApi) -> None:
    fake_api.add("GET", "/api/jobs", 200, {"items": [status_body("Completed")], "continuationToken": "t"})
    fake_api.add("GET", "/api/jobs", 200, {"items": [status_body("Failed")]})
    result = run(fake_api, "list", "--all", "--json")
    assert [item["status"] for item in json.loads(result.out)["items"]] == ["Completed", "Failed"]
    assert "continuationToken" not in json.loads(result.out)


def test_an_unreachable_api_exits_7() -> None:
    result = run(None, "status", JOB_ID, "--base-url", f"http://127.0.0.1:{free_port()}")
    assert result.code == exit_codes.UNREACHABLE
    assert result.err.startswith("CONNECTION_FAILED: cannot reach http://127.0.0.1:")
    assert "(correlation id " in result.err


def test_missing_settings_exit_2(fake_api: FakeApi) -> None:
    result = run(fake_api, "status", JOB_ID, "--auth", "client-credentials")
    assert result.code == exit_codes.USAGE and result.err.startswith("CONFIGURATION_INVALID: set JOBS_CLIENT_ID")


def test_no_token_exits_8(fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> str:
        raise AuthenticationError("device code: expired_token: the code expired")

    monkeypatch.setattr(cli, "build_token_provider", lambda *args, **kwargs: refuse)
    result = run(fake_api, "status", JOB_ID)
    assert result.code == exit_codes.AUTH_FAILED
    assert result.err.strip() == "AUTHENTICATION_FAILED: device code: expired_token: the code expired"


def test_python_dash_m_client_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "client", "--help"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and "submit" in done.stdout and "exit codes" in done.stdout


PROJECT_VERSION = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
SCRIPTS = Path(sys.executable).parent  # the virtual environment's console scripts (pip install -e .)


@pytest.mark.parametrize(("command", "prog"), [
    ([str(SCRIPTS / "jobsctl")], "jobsctl"), ([str(SCRIPTS / "jobs")], "jobs"),
    ([sys.executable, "-m", "client"], "python -m client"),
])
def test_version_and_usage_name_the_program_as_typed(command: list[str], prog: str) -> None:
    version = subprocess.run([*command, "--version"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
                             check=False)
    assert version.returncode == 0 and version.stdout == f"{prog} {PROJECT_VERSION}\n"
    usage = subprocess.run([*command, "list", "--page-size", "0"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           timeout=60, check=False)
    assert usage.returncode == exit_codes.USAGE and usage.stderr.startswith(f"usage: {prog} list ")
    assert f"{prog} list: error: argument --page-size" in usage.stderr


def test_program_name_comes_from_argv0() -> None:
    assert cli.program_name("/home/me/.venv/bin/jobsctl") == "jobsctl"
    assert cli.program_name("/opt/tools/jobs") == "jobs"
    assert cli.program_name("C:/venv/Scripts/jobsctl.exe") == "jobsctl"
    assert cli.program_name(str(PROJECT_ROOT / "client" / "__main__.py")) == "python -m client"
    assert cli.build_parser({}, prog="custom").prog == "custom"


def test_the_version_is_the_installed_distributions() -> None:
    assert cli.package_version() == metadata.version("azure-functions-background-jobs") == PROJECT_VERSION


def test_without_an_installed_distribution_the_checkout_tells_the_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cli.metadata, "version", not_installed)
    assert cli.package_version() == f"{PROJECT_VERSION} (not installed)"
    monkeypatch.setattr(cli, "CHECKOUT_PYPROJECT", tmp_path / "absent.toml")
    assert cli.package_version() == "unknown"


# ---- the live progress line -----------------------------------------------------------------------

HIDE_CURSOR, SHOW_CURSOR, REDRAW = "\x1b[?25l", "\x1b[?25h", "\r\x1b[2K"


def fake_clock() -> tuple[list[float], Callable[[float], None]]:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return now, sleep


def test_progress_on_a_tty_redraws_one_rich_live_line_while_waiting() -> None:
    now, sleep = fake_clock()
    stream = io.StringIO()
    progress = Progress(stream, tty=True, clock=lambda: now[0], sleep=sleep)
    progress.update(JobStatus.from_json(status_body("Running", percentComplete=25, progressMessage="reading")))
    progress.sleep(1.0)
    progress.update(JobStatus.from_json(status_body("Completed", percentComplete=100)))
    progress.finish()

    text = stream.getvalue()
    assert text.startswith(HIDE_CURSOR) and text.endswith("\n" + SHOW_CURSOR)  # rich's Live: cursor hidden meanwhile
    frames = text.removeprefix(HIDE_CURSOR).removesuffix("\n" + SHOW_CURSOR).split(REDRAW)
    assert all("\n" not in frame for frame in frames)  # one line, redrawn in place
    running = frames[:5]  # the first draw, four ticks of 0.25 s
    assert [frame[1:] for frame in running] == [
        f"    {seconds}s Running 25% reading" for seconds in ("0.0", "0.2", "0.5", "0.8", "1.0")]
    assert {frame[0] for frame in running} <= set("-\\|/") and len({frame[0] for frame in running}) > 1  # it spins
    assert frames[-1] == "     1.0s Completed 100%"  # the final status stays on screen, without a spinner


def test_the_live_line_gives_the_cursor_back_when_the_wait_is_interrupted() -> None:
    now, sleep = fake_clock()
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt), Progress(stream, tty=True, clock=lambda: now[0], sleep=sleep) as progress:
        progress.update(JobStatus.from_json(status_body("Running")))
        raise KeyboardInterrupt
    assert stream.getvalue().endswith("Running\n" + SHOW_CURSOR)


def test_status_history_says_where_the_server_dropped_entries(fake_api: FakeApi) -> None:
    entry = {"from": "Running", "to": "Queued", "attempt": 1, "at": "2025-01-02T03:04:05Z", "reason": "TRANSIENT_ERROR"}
    fake_api.add("GET", STATUS, 200, status_body(
        "Queued", history=[{**entry, "version": 1, "from": None, "reason": "Submitted"}, {**entry, "version": 90}],
        historyOmitted=88))
    lines = run(fake_api, "status", JOB_ID, "--history").out.splitlines()
    where = next(i for i, line in enumerate(lines) if "88 older entries omitted" in line)
    assert "Submitted" in lines[where - 1] and lines[where + 1].lstrip().startswith("v90")
