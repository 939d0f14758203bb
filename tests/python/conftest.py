"""Fixtures of the Python client suite: the client generated from proto/ with grpcio-tools
(as a newcomer would), and a real `carbonx serve` on a loopback port with a temporary data
directory and a tokens file of its own principals."""

import os
import pathlib
import subprocess
import sys
import tempfile

import grpc
import pytest

ROOT = pathlib.Path(os.environ.get("CARBONX_ROOT", pathlib.Path(__file__).resolve().parents[2]))
BINARY = os.environ.get("CARBONX_BIN", str(ROOT / "target" / "debug" / "carbonx"))

# (id, name, role, token, accounts)
PRINCIPALS = [
    (1, "ministry", "authority", "py-token-authority-0001", [1]),
    (2, "verifier", "verifier", "py-token-verifier-0001", []),
    (3, "m1", "member", "py-token-member-m1-0001", [101]),
    (4, "m2", "member", "py-token-member-m2-0001", [102]),
    (5, "e1", "entity", "py-token-entity-e1-0001", [201]),
    (6, "ops", "operator", "py-token-operator-0001", []),
    (7, "audit", "auditor", "py-token-auditor-0001", []),
]


def token(name):
    return next(p[3] for p in PRINCIPALS if p[1] == name)


@pytest.fixture(scope="session")
def pb():
    """The generated modules, by service file: pb.trading, pb.trading_grpc, ..."""
    out = tempfile.mkdtemp(prefix="carbonx-py-")
    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))
    from grpc_tools import protoc

    include = str(pathlib.Path(protoc.__file__).parent / "_proto")
    args = ["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--python_out={out}",
            f"--grpc_python_out={out}", *protos]
    assert protoc.main(args) == 0, f"protoc failed: {args}"
    sys.path.insert(0, out)
    import importlib

    class Modules:
        pass

    modules = Modules()
    for name in ["common", "trading", "admin", "registry", "compliance", "market_data", "auction",
                 "emissions"]:
        setattr(modules, name, importlib.import_module(f"carbonx.v1.{name}_pb2"))
        setattr(modules, name + "_grpc", importlib.import_module(f"carbonx.v1.{name}_pb2_grpc"))
    return modules


class Server:
    def __init__(self, data):
        self.data = pathlib.Path(data)
        tokens = self.data / "tokens.toml"
        lines = []
        for pid, name, role, tok, accounts in PRINCIPALS:
            lines += [
                "[[principal]]",
                f"id = {pid}",
                f'name = "{name}"',
                f'role = "{role}"',
                f'token = "{tok}"',
                f"accounts = {accounts}",
                "",
            ]
        tokens.write_text("\n".join(lines))
        self.process = subprocess.Popen(
            [BINARY, "serve", "--data", str(self.data / "data"), "--tokens", str(tokens),
             "--listen", "127.0.0.1:0", "--metrics-listen", "off", "--dashboard-listen", "off"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        self.address = None
        for line in self.process.stdout:
            if line.startswith("carbonx listening on "):
                self.address = line.split()[-1]
                break
        assert self.address, "the server did not start (see its output above)"

    def channel(self):
        return grpc.insecure_channel(self.address)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory(prefix="carbonx-py-data-") as data:
        s = Server(data)
        yield s
        s.stop()


def auth(name):
    """The call metadata of principal `name`: exactly `authorization: Bearer <token>`."""
    return [("authorization", f"Bearer {token(name)}")]
