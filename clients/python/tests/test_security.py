"""Auth and TLS through the Python client, against REAL mixflow servers (``mixflow serve``).

- Bearer tokens: one server with an admin token (from ``auth.adminTokenFile``), a run
  token configured as a sha256 digest (``auth.runTokens``) and run tokens issued by
  CreateRun. The admin token manages runs; a run token reaches its own run only (batches,
  streams, reports, weights); no token or an unknown one is UNAUTHENTICATED, another run's
  token PERMISSION_DENIED, each with the server's message in the ``MixflowError``.
- TLS: a throwaway CA, a server certificate for 127.0.0.1/localhost, a client certificate
  and a second CA the server does not trust, all made here with the openssl CLI (the test
  fails naming the package when openssl is missing). Server TLS, then mutual TLS combined with auth.

Transport failures (plaintext against TLS, a handshake the server refuses) are reported by
gRPC itself, not by the server, so for those only the status code is asserted.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from conftest import ServerProcess, run_config, wait_until, write_server_config
from mixflow_client import MixflowClient, MixflowError, MixflowIterableDataset, ReportRejected

ADMIN = "py-admin-token-0123456789abcdef"
FIXED_TOKEN = "py-fixed-run-token-0123456789"
FIXED_DIGEST = "sha256:" + hashlib.sha256(FIXED_TOKEN.encode()).hexdigest()
ISSUED = re.compile(r"^mfr_[A-Za-z0-9_-]{43}$")
SLOTS = 8  # run_config's batchSize; every run here has worldSize 1

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
MISSING = ("missing credentials", '"authorization: Bearer <token>"')
INVALID = ("invalid token",)
NOT_ADMIN = ("needs the admin token", "a run token only reaches its own run's RPCs")


def other_run(run_id: str) -> tuple[str, ...]:
    return (f'this token belongs to another run, not to run "{run_id}"',)


def expect_error(code: grpc.StatusCode, call: Callable[[], Any], *says: str, secret: str | None = None) -> MixflowError:
    """``call()`` raises a MixflowError with ``code`` whose message contains every ``says``
    (and never the presented ``secret``)."""
    with pytest.raises(MixflowError) as info:
        call()
    e = info.value
    assert e.code == code, f"expected {code.name}, got {e.code.name}: {e.message}"
    assert str(e) == f"{code.name}: {e.message}"
    for s in says:
        assert s in e.message, f"{s!r} not in the server's message {e.message!r}"
    if secret is not None:
        assert secret not in e.message, "the server echoed the presented token"
    return e


def stop(srv: ServerProcess) -> None:
    try:
        assert srv.stop() == 0, "server did not drain cleanly"
    finally:
        srv.kill()


def run_cfg(data_dir: Path, run_id: str) -> dict[str, Any]:
    return run_config(data_dir, run_id, worldSize=1)


# ----------------------------------------------------------------------------------------
# Bearer tokens


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("auth")
    (root / "admin.token").write_text(ADMIN + "\n", encoding="utf-8")  # trimmed by the server
    config = write_server_config(
        root / "mixflow.json",
        [run_cfg(data_dir, "fixed")],
        auth={"adminTokenFile": "admin.token", "runTokens": {"fixed": FIXED_DIGEST}},
    )
    srv = ServerProcess(config, root / "state").start()
    yield srv
    stop(srv)


@pytest.fixture(scope="module")
def admin(auth_server: ServerProcess) -> Iterator[MixflowClient]:
    with MixflowClient(auth_server.address, token=ADMIN, deadline=10.0) as c:
        yield c


@pytest.fixture(scope="module")
def tokens(admin: MixflowClient, data_dir: Path) -> dict[str, str]:
    """Runs created by the admin, with the tokens CreateRun issued (and "fixed" from the config)."""
    out = {"fixed": FIXED_TOKEN}
    for run_id in ("run-a", "run-b", "run-ds"):
        info = admin.create_run(run_cfg(data_dir, run_id))
        assert info.run_id == run_id and info.state == "open"
        assert ISSUED.match(info.run_token), info.run_token
        out[run_id] = info.run_token
    assert len(set(out.values())) == len(out)
    return out


def client_for(srv: ServerProcess, token: str | None) -> MixflowClient:
    return MixflowClient(srv.address, token=token, deadline=10.0)


def test_admin_token_creates_lists_and_reaches_every_run(admin: MixflowClient, tokens: dict[str, str]) -> None:
    listed = {r.run_id: r for r in admin.list_runs()}
    assert {"fixed", "run-a", "run-b", "run-ds"} <= set(listed)
    # The token is returned by CreateRun only, never by GetRun/ListRuns.
    assert all(r.run_token == "" for r in listed.values())
    assert admin.get_run("run-b").run_token == ""
    b = admin.next_batch("run-b", 0)
    assert (b.run_id, b.step, b.slots) == ("run-b", 0, SLOTS)
    assert [v.version for v in admin.get_weights("run-b").versions][:1] == [1]


def test_run_token_batches_streams_and_reports_on_its_run(auth_server: ServerProcess, admin: MixflowClient, tokens: dict[str, str]) -> None:
    with client_for(auth_server, tokens["run-a"]) as c:
        info = c.get_run("run-a")
        assert (info.run_id, info.batch_size, info.run_token) == ("run-a", SLOTS, "")
        first = c.next_batch("run-a", 0)
        assert (first.step, first.slots) == (0, SLOTS)
        streamed = list(c.stream_batches("run-a", max_batches=3))
        assert [b.step for b in streamed] == [0, 1, 2]
        assert np.array_equal(streamed[0].slot_samples, first.slot_samples)
        assert streamed[0].text.texts() == first.text.texts()  # type: ignore[union-attr]
        resumed = list(c.batches("run-a", from_step=1, max_batches=2))  # the resuming iterator
        assert [b.step for b in resumed] == [1, 2]
        assert [b.digest for b in resumed] == [b.digest for b in streamed[1:]]

        r = c.report_signals("run-a", 0, sample_losses=np.full(SLOTS, 2.0, dtype=np.float32))
        assert (r.duplicate, r.step_complete) == (False, True)
        again = c.report_signals("run-a", 0, sample_losses=np.full(SLOTS, 2.0, dtype=np.float32))
        assert again.duplicate is True
        with c.reporter("run-a") as rep:
            for step in (1, 2):
                rep.report(step, sample_losses=np.full(SLOTS, 1.5, dtype=np.float32))
            rep.flush(timeout=10.0)
            assert rep.acked == 2
        wait_until(lambda: admin.get_run("run-a").last_aggregated_step == 2, what="run-a steps 0-2 aggregated")

        assert c.get_weights("run-a").versions[0].version == 1
        watch = c.watch_weights("run-a")
        assert next(watch).version >= 1
        watch.close()

    # A token configured as a sha256 digest authenticates its run.
    with client_for(auth_server, FIXED_TOKEN) as c:
        assert c.get_run("fixed").run_id == "fixed"
        assert c.next_batch("fixed", 0).slots == SLOTS


def test_no_token_is_unauthenticated_with_the_servers_message(auth_server: ServerProcess, admin: MixflowClient, data_dir: Path, tokens: dict[str, str]) -> None:
    before = {r.run_id for r in admin.list_runs()}
    with client_for(auth_server, None) as c:
        calls: dict[str, Callable[[], Any]] = {
            "CreateRun": lambda: c.create_run(run_cfg(data_dir, "sneaky")),
            "ListRuns": c.list_runs,
            "CloseRun": lambda: c.close_run("run-a"),
            "GetRun": lambda: c.get_run("run-a"),
            "NextBatch": lambda: c.next_batch("run-a", 0),
            "StreamBatches": lambda: list(c.stream_batches("run-a", max_batches=1)),
            "batches()": lambda: list(c.batches("run-a", max_batches=1)),
            "ReportSignals": lambda: c.report_signals("run-a", 7, sample_losses=np.ones(SLOTS)),
            "GetWeights": lambda: c.get_weights("run-a"),
            "WatchWeights": lambda: next(c.watch_weights("run-a")),
        }
        for name, call in calls.items():
            e = expect_error(UNAUTH, call, *MISSING)
            assert e.message.startswith("missing credentials"), (name, e.message)
    after = {r.run_id: r for r in admin.list_runs()}
    assert set(after) == before and after["run-a"].state == "open"  # nothing created or closed


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token-of-this-server-at-all",
        ADMIN[:-1] + "X",  # the admin token with its last character changed
        FIXED_DIGEST,  # the stored digest is not the token
        "mfr_" + "A" * 43,  # shaped like an issued token
    ],
    ids=["unknown", "admin-off-by-one", "digest", "issued-shape"],
)
def test_wrong_token_is_unauthenticated(auth_server: ServerProcess, token: str) -> None:
    with client_for(auth_server, token) as c:
        expect_error(UNAUTH, c.list_runs, *INVALID, secret=token)
        expect_error(UNAUTH, lambda: c.get_run("fixed"), *INVALID, secret=token)
        expect_error(UNAUTH, lambda: list(c.stream_batches("fixed", max_batches=1)), *INVALID, secret=token)
        expect_error(UNAUTH, lambda: c.report_signals("fixed", 9, sample_losses=np.ones(SLOTS)), *INVALID, secret=token)


def test_another_runs_token_is_permission_denied(auth_server: ServerProcess, admin: MixflowClient, data_dir: Path, tokens: dict[str, str]) -> None:
    # Serve run-a up to step 6 first, so reports of steps 5 and 6 would be valid from its own token.
    assert admin.next_batch("run-a", 6).step == 6
    with client_for(auth_server, tokens["run-b"]) as c:
        says = other_run("run-a")
        expect_error(DENIED, lambda: c.get_run("run-a"), *says)
        expect_error(DENIED, lambda: c.next_batch("run-a", 0), *says)
        expect_error(DENIED, lambda: list(c.stream_batches("run-a", max_batches=1)), *says)
        expect_error(DENIED, lambda: list(c.batches("run-a", max_batches=1)), *says)
        expect_error(DENIED, lambda: c.report_signals("run-a", 5, sample_losses=np.ones(SLOTS)), *says)
        expect_error(DENIED, lambda: c.get_weights("run-a"), *says)
        expect_error(DENIED, lambda: next(c.watch_weights("run-a")), *says)
        expect_error(DENIED, lambda: c.get_run("fixed"), *other_run("fixed"))
        # The background reporter surfaces the refusal as a ReportRejected with the code.
        rep = c.reporter("run-a")
        rep.report(6, sample_losses=np.ones(SLOTS, dtype=np.float32))
        with pytest.raises(ReportRejected) as rejected:
            rep.flush(timeout=10.0)
        assert (rejected.value.step, rejected.value.code) == (6, DENIED)
        assert says[0] in rejected.value.cause.message
        with pytest.raises(ReportRejected):  # close() stops the workers and raises it again
            rep.close()
        # Run management needs the admin token, even for the token's own run.
        expect_error(DENIED, c.list_runs, *NOT_ADMIN)
        expect_error(DENIED, lambda: c.create_run(run_cfg(data_dir, "sneaky")), *NOT_ADMIN)
        expect_error(DENIED, lambda: c.close_run("run-b"), *NOT_ADMIN)
        assert c.get_run("run-b").state == "open"  # its own run still works
    # None of the refused reports was recorded: run-a's own token is the first to report steps 5 and 6.
    with client_for(auth_server, tokens["run-a"]) as a:
        for step in (5, 6):
            assert a.report_signals("run-a", step, sample_losses=np.ones(SLOTS)).duplicate is False
    assert "sneaky" not in {r.run_id for r in admin.list_runs()}


def test_dataset_takes_a_run_token(auth_server: ServerProcess, admin: MixflowClient, tokens: dict[str, str]) -> None:
    ds = MixflowIterableDataset(auth_server.address, "run-ds", token=tokens["run-ds"], max_steps=3, seq_len=31, as_torch=False, rank=0, world_size=1)
    try:
        assert ds.domain_names == ["alpha", "beta", "gamma"]
        items = []
        for item in ds:  # paced by reports (the default): report each step as we go
            items.append(item)
            ds.report(item["step"], np.full(SLOTS, 3.0, dtype=np.float32))
        assert [it["step"] for it in items] == [0, 1, 2]
        for it in items:
            assert it["tokens"].shape == (SLOTS, 32) and it["tokens"].dtype == np.uint8
            assert np.array_equal(it["domains"], admin.next_batch("run-ds", it["step"]).slot_domains)
        ds.close()
        wait_until(lambda: admin.get_run("run-ds").last_aggregated_step == 2, what="run-ds steps 0-2 aggregated")
    finally:
        ds.client.close()

    expect_error(UNAUTH, lambda: MixflowIterableDataset(auth_server.address, "run-ds", rank=0, world_size=1), *MISSING)
    expect_error(DENIED, lambda: MixflowIterableDataset(auth_server.address, "run-ds", token=tokens["run-a"], rank=0, world_size=1), *other_run("run-ds"))
    with pytest.raises(ValueError, match="token and credentials go to the MixflowClient"):
        MixflowIterableDataset(admin, "run-ds", token=tokens["run-ds"])


# ----------------------------------------------------------------------------------------
# TLS and mutual TLS


def _openssl(cwd: Path, *args: str) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"openssl {' '.join(args)} failed:\n{r.stderr}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem signing server.pem (SAN IP:127.0.0.1, DNS:localhost) and client.pem; other-ca.pem
    signing rogue.pem (a client certificate the server must not accept). EC P-256 keys."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is not on PATH: install it (Debian: apt-get install openssl), or run npm test, which installs it")
    d = tmp_path_factory.mktemp("pki")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        _openssl(d, "req", "-x509", *key, "-days", "2", "-subj", f"/CN=mixflow test {ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    leaves = {
        "server": ("ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        "client": ("ca", "extendedKeyUsage=clientAuth\n"),
        "rogue": ("other-ca", "extendedKeyUsage=clientAuth\n"),
        "dnsonly": ("ca", "subjectAltName=DNS:mixflow.internal\nextendedKeyUsage=serverAuth\n"),
    }
    for name, (signer, ext) in leaves.items():
        (d / f"{name}.ext").write_text(ext, encoding="utf-8")
        _openssl(d, "req", *key, "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{signer}.pem", "-CAkey", f"{signer}.key", "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return d


def _pem(pki: Path, name: str) -> bytes:
    return (pki / name).read_bytes()


def _start_in(pki: Path, name: str, data_dir: Path, **sections: Any) -> ServerProcess:
    """A server whose config sits next to the PEM files (tls paths relative to it)."""
    config = write_server_config(pki / f"{name}.json", [run_cfg(data_dir, "tls-run")], **sections)
    return ServerProcess(config, pki / f"state-{name}").start()


def test_tls_server_with_a_trusted_ca(pki: Path, data_dir: Path) -> None:
    srv = _start_in(pki, "tls", data_dir, tls={"cert": "server.pem", "key": "server.key"})
    try:
        port = srv.address.rsplit(":", 1)[1]
        trusted = grpc.ssl_channel_credentials(root_certificates=_pem(pki, "ca.pem"))
        # The certificate names IP 127.0.0.1 and DNS localhost: both verify without
        # grpc.ssl_target_name_override.
        for host in ("127.0.0.1", "localhost"):
            with MixflowClient(f"{host}:{port}", credentials=trusted, deadline=10.0) as c:
                assert c.get_run("tls-run").run_id == "tls-run"
                batches = list(c.stream_batches("tls-run", max_batches=2))
                assert [(b.step, b.slots) for b in batches] == [(0, SLOTS), (1, SLOTS)]
                assert len(batches[0].text.texts()) == SLOTS  # type: ignore[union-attr]
                assert batches[1].digest == c.next_batch("tls-run", 1).digest

        # The dataset passes credentials to the client it creates.
        ds = MixflowIterableDataset(srv.address, "tls-run", credentials=trusted, max_steps=2, as_torch=False, rank=0, world_size=1, pace_by_reports=False)
        try:
            assert [it["step"] for it in ds] == [0, 1]
        finally:
            ds.close()
            ds.client.close()

        # Plaintext against the TLS port, and a client that does not trust the server's CA.
        with MixflowClient(srv.address, deadline=5.0) as plain:
            expect_error(UNAVAILABLE, lambda: plain.get_run("tls-run"))
            expect_error(UNAVAILABLE, lambda: list(plain.stream_batches("tls-run", max_batches=1)))
        untrusting = grpc.ssl_channel_credentials(root_certificates=_pem(pki, "other-ca.pem"))
        with MixflowClient(srv.address, credentials=untrusting, deadline=5.0) as wrong_ca:
            expect_error(UNAVAILABLE, lambda: wrong_ca.get_run("tls-run"))
    finally:
        stop(srv)


def test_channel_options_reach_a_server_by_ip_whose_certificate_names_only_a_dns_name(pki: Path, data_dir: Path) -> None:
    srv = _start_in(pki, "dnsonly", data_dir, tls={"cert": "dnsonly.pem", "key": "dnsonly.key"})
    try:
        trusted = grpc.ssl_channel_credentials(root_certificates=_pem(pki, "ca.pem"))
        with MixflowClient(srv.address, credentials=trusted, deadline=5.0) as by_ip:
            expect_error(UNAVAILABLE, lambda: by_ip.get_run("tls-run"))  # hostname check fails: 127.0.0.1 is not in the certificate
        override = [("grpc.ssl_target_name_override", "mixflow.internal")]
        with MixflowClient(srv.address, credentials=trusted, deadline=10.0, channel_options=override) as c:
            assert c.get_run("tls-run").run_id == "tls-run"
            assert [b.step for b in c.stream_batches("tls-run", max_batches=2)] == [0, 1]
    finally:
        stop(srv)


def test_mutual_tls_with_auth(pki: Path, data_dir: Path) -> None:
    srv = _start_in(
        pki,
        "mtls",
        data_dir,
        tls={"cert": "server.pem", "key": "server.key", "ca": "ca.pem", "requireClientCert": True},
        auth={"adminToken": ADMIN},
    )
    ca = _pem(pki, "ca.pem")
    with_cert = grpc.ssl_channel_credentials(ca, _pem(pki, "client.key"), _pem(pki, "client.pem"))
    try:
        with MixflowClient(srv.address, token=ADMIN, credentials=with_cert, deadline=10.0) as admin:
            assert "tls-run" in {r.run_id for r in admin.list_runs()}
            run = admin.create_run(run_cfg(data_dir, "mtls-run"))
            assert ISSUED.match(run.run_token)
        # TLS does not replace auth: the accepted certificate without a token is refused.
        with MixflowClient(srv.address, credentials=with_cert, deadline=10.0) as no_token:
            expect_error(UNAUTH, no_token.list_runs, *MISSING)

        # No client certificate, or one from a CA the server does not trust: the handshake fails.
        no_cert = grpc.ssl_channel_credentials(root_certificates=ca)
        rogue = grpc.ssl_channel_credentials(ca, _pem(pki, "rogue.key"), _pem(pki, "rogue.pem"))
        for creds in (no_cert, rogue):
            with MixflowClient(srv.address, token=ADMIN, credentials=creds, deadline=5.0) as refused:
                expect_error(UNAVAILABLE, refused.list_runs)
                expect_error(UNAVAILABLE, lambda: list(refused.stream_batches("tls-run", max_batches=1)))

        # A trainer: client certificate + run token, through the dataset, reporting as it goes.
        ds = MixflowIterableDataset(srv.address, "mtls-run", token=run.run_token, credentials=with_cert, max_steps=2, seq_len=15, as_torch=False, rank=0, world_size=1)
        try:
            steps = []
            for item in ds:
                steps.append(item["step"])
                assert item["tokens"].shape == (SLOTS, 16)
                ds.report(item["step"], np.ones(SLOTS, dtype=np.float32))
            assert steps == [0, 1]
            ds.close()
            wait_until(lambda: ds.client.get_run("mtls-run").last_aggregated_step == 1, what="mtls-run steps 0-1 aggregated")
        finally:
            ds.client.close()
    finally:
        stop(srv)
