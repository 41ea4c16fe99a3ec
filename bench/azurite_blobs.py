"""Azurite for the bench's W6 (bench/bench.py): start and stop it with scripts/azurite.sh, and
fill, trim and read one container over the Blob REST API, authorised by an account SAS signed
with Azurite's well-known development key (public, documented by Microsoft; not a secret).

Standard library only; these requests go straight to Azurite, never through the latency proxy,
and are never timed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import os
import re
import socket
import subprocess
import urllib.parse
from pathlib import Path

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SAS_VERSION = "2021-08-06"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def connection_string(blob_port: int) -> str:
    """Account key and an explicit endpoint on 127.0.0.1:`blob_port` (Azurite, or the proxy)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob_port}/{ACCOUNT};"
    )


class Azurite:
    """One Azurite instance in its own folder and on free ports (never 10000, which a
    developer's `UseDevelopmentStorage=true` expects), started by scripts/azurite.sh."""

    def __init__(self, root: Path, folder: Path) -> None:
        self.script = root / "scripts" / "azurite.sh"
        self.folder = folder
        self.env = {
            **os.environ,
            "AZURITE_DIR": str(folder),
            "AZURITE_BLOB_PORT": str(free_port()),
            "AZURITE_QUEUE_PORT": str(free_port()),
            "AZURITE_TABLE_PORT": str(free_port()),
        }
        self.blob_port = int(self.env["AZURITE_BLOB_PORT"])

    def __enter__(self) -> "Azurite":
        subprocess.run(["bash", str(self.script), "start"], env=self.env, check=True, stdout=subprocess.DEVNULL)
        return self

    def __exit__(self, *_exc) -> None:
        subprocess.run(["bash", str(self.script), "stop"], env=self.env, check=False, stdout=subprocess.DEVNULL)


def account_sas() -> str:
    """An account SAS for the blob service (every resource type and permission), one hour."""
    now = dt.datetime.now(dt.timezone.utc)
    start = (now - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expiry = (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    permissions, services, resource_types, protocol = "rwdlacup", "b", "sco", "https,http"
    string_to_sign = "\n".join(
        [ACCOUNT, permissions, services, resource_types, start, expiry, "", protocol, SAS_VERSION, "", ""]
    )
    key = base64.b64decode(ACCOUNT_KEY)
    signature = base64.b64encode(hmac.new(key, string_to_sign.encode(), hashlib.sha256).digest()).decode()
    return urllib.parse.urlencode(
        {"sv": SAS_VERSION, "ss": services, "srt": resource_types, "sp": permissions, "st": start, "se": expiry,
         "spr": protocol, "sig": signature}
    )


class Container:
    def __init__(self, port: int, name: str) -> None:
        self.port, self.name, self.sas = port, name, account_sas()

    def _request(self, method: str, path: str, query: str = "", body: bytes | None = None,
                 headers: dict | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        url = f"/{ACCOUNT}/{path}?" + "&".join(q for q in (query, self.sas) if q)
        connection.request(method, url, body=body, headers={"x-ms-version": SAS_VERSION, **(headers or {})})
        answer = connection.getresponse()
        data = answer.read()
        connection.close()
        return answer.status, data

    def _blob(self, name: str) -> str:
        return f"{self.name}/{urllib.parse.quote(name)}"

    def create(self) -> None:
        status, data = self._request("PUT", self.name, "restype=container")
        if status not in (201, 409):
            raise SystemExit(f"creating container {self.name} in Azurite: {status} {data[:300]!r}")

    def put(self, name: str, data: bytes) -> None:
        status, answer = self._request("PUT", self._blob(name), body=data, headers={"x-ms-blob-type": "BlockBlob"})
        if status != 201:
            raise SystemExit(f"uploading {name} to Azurite: {status} {answer[:300]!r}")

    def get(self, name: str) -> bytes:
        status, data = self._request("GET", self._blob(name))
        if status != 200:
            raise SystemExit(f"downloading {name} from Azurite: {status} {data[:300]!r}")
        return data

    def delete(self, name: str) -> None:
        status, data = self._request("DELETE", self._blob(name))
        if status not in (202, 404):
            raise SystemExit(f"deleting {name} in Azurite: {status} {data[:300]!r}")

    def names(self) -> list[str]:
        names, marker = [], ""
        while True:
            query = "restype=container&comp=list" + (f"&marker={urllib.parse.quote(marker)}" if marker else "")
            status, data = self._request("GET", self.name, query)
            if status != 200:
                raise SystemExit(f"listing {self.name} in Azurite: {status} {data[:300]!r}")
            text = data.decode()
            names += [_unescape(n) for n in re.findall(r"<Name>(.*?)</Name>", text)]
            found = re.search(r"<NextMarker>(.+?)</NextMarker>", text)
            if not found:
                return names
            marker = _unescape(found.group(1))

    def upload_tree(self, folder: Path) -> None:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                self.put(path.name, path.read_bytes())

    def keep_only(self, names: set[str]) -> int:
        """Deletes every blob not in `names` (a run's outputs): the state before the runs."""
        extra = [n for n in self.names() if n not in names]
        for name in extra:
            self.delete(name)
        return len(extra)

    def download(self, names: list[str], destination: Path) -> None:
        for name in names:
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.get(name))


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'").replace(
        "&amp;", "&")
