"""Pulling from a registry: the OCI distribution API with token auth.

Follows distribution-spec and Docker's token flow: try the request, and on a
401 with a ``Bearer`` challenge fetch a token from the realm for the scope,
then retry. Both OCI and Docker media types are asked for (a registry that
stored an OCI manifest answers 404 to a Docker-only Accept), manifest lists
are resolved to this host's platform, and every manifest and blob is
verified against its digest before it is kept.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO

from ..errors import ImageFormatError, RegistryError
from ..records import ImageInfo
from .reference import Reference, parse_reference
from .store import ImageStore, LayerSource, ProgressFn, check_digest

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((MT_OCI_INDEX, MT_OCI_MANIFEST, MT_DOCKER_LIST, MT_DOCKER_MANIFEST))
INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)
MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)
MAX_MANIFEST = 4 << 20          # manifests are small; refuse absurd ones

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "i686": "386"}


def host_platform() -> tuple[str, str]:
    """``(os, architecture)`` in OCI terms for this machine."""
    return "linux", _ARCH.get(platform.machine(), platform.machine())


def _is_loopback(host: str) -> bool:
    h = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return h in ("localhost", "[::1]") or h.startswith("127.")


def _insecure_hosts() -> set[str]:
    return {h.strip() for h in os.environ.get("PORTSIDE_INSECURE_REGISTRIES", "").split(",") if h.strip()}


@dataclass
class _Challenge:
    realm: str
    service: str
    scope: str


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class _NoAuthOnRedirect(urllib.request.HTTPRedirectHandler):
    """Blob downloads redirect to storage that must not see our token."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.headers.pop("Authorization", None)
        return new


class RegistryClient:
    """A small distribution-API client for one registry and repository."""

    def __init__(self, ref: Reference, *, timeout: float = 60.0,
                 username: str | None = None, password: str | None = None) -> None:
        self.ref = ref
        self.host = ref.registry if ref.registry != "docker.io" else "registry-1.docker.io"
        insecure = _is_loopback(self.host) or self.host in _insecure_hosts()
        self.base = f"{'http' if insecure else 'https'}://{self.host}/v2/"
        self.timeout = timeout
        self.username = username if username is not None else os.environ.get("PORTSIDE_REGISTRY_USER")
        self.password = password if password is not None else os.environ.get("PORTSIDE_REGISTRY_PASSWORD")
        self._token: str | None = None
        self._opener = urllib.request.build_opener(_NoAuthOnRedirect())

    # -- HTTP ---------------------------------------------------------------
    def _request(self, path: str, accept: str | None = None) -> BinaryIO:
        url = self.base + path
        for attempt in range(2):
            req = urllib.request.Request(url)
            if accept:
                req.add_header("Accept", accept)
            if self._token:
                req.add_header("Authorization", f"Bearer {self._token}")
            elif self.username:
                creds = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
                req.add_header("Authorization", f"Basic {creds}")
            try:
                return self._opener.open(req, timeout=self.timeout)  # type: ignore[no-any-return]
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 0:
                    scheme, params = _parse_challenge(err.headers.get("WWW-Authenticate", ""))
                    if scheme == "bearer" and "realm" in params:
                        self._token = self._fetch_token(params)
                        continue
                raise self._http_error(err, path) from err
            except (urllib.error.URLError, OSError) as err:
                reason = getattr(err, "reason", err)
                raise RegistryError(f"cannot reach registry {self.host}: {reason}",
                                    hint="check the registry address and that it is running") from err
        raise RegistryError(f"registry {self.host} refused the credentials for {self.ref.name}",
                            hint="check PORTSIDE_REGISTRY_USER/PORTSIDE_REGISTRY_PASSWORD")

    def _fetch_token(self, params: dict[str, str]) -> str:
        query = {"service": params.get("service", "")}
        query["scope"] = params.get("scope") or f"repository:{self.ref.remote_path}:pull"
        url = params["realm"] + "?" + urllib.parse.urlencode(query)
        req = urllib.request.Request(url)
        if self.username:
            creds = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            req.add_header("Authorization", f"Basic {creds}")
        try:
            with self._opener.open(req, timeout=self.timeout) as r:
                body = json.loads(r.read(1 << 20))
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise RegistryError(f"cannot get a token from {params['realm']}: {err}") from err
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str):
            raise RegistryError(f"token server {params['realm']} sent no token")
        return token

    def _http_error(self, err: urllib.error.HTTPError, path: str) -> RegistryError:
        if err.code == 404:
            return RegistryError(f"{self.ref} not found on {self.host}",
                                 hint="check the name and tag (portside pull NAME:TAG)")
        if err.code in (401, 403):
            return RegistryError(f"access to {self.ref.name} on {self.host} denied ({err.code})",
                                 hint="the repository may be private: set PORTSIDE_REGISTRY_USER/PASSWORD")
        return RegistryError(f"registry {self.host} answered {err.code} {err.reason} for {path}")

    # -- API ----------------------------------------------------------------
    def manifest(self, reference: str) -> tuple[bytes, str, str]:
        """Fetch a manifest or index; returns ``(bytes, media type, digest)``."""
        with self._request(f"{self.ref.remote_path}/manifests/{reference}", ACCEPT) as r:
            body = r.read(MAX_MANIFEST + 1)
            media_type = (r.headers.get("Content-Type") or "").split(";")[0].strip()
        if len(body) > MAX_MANIFEST:
            raise ImageFormatError(f"manifest for {self.ref} is larger than {MAX_MANIFEST} bytes")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise ImageFormatError(f"manifest {reference} from {self.host} does not match its digest",
                                   hint="the registry or a proxy altered it")
        try:
            doc = json.loads(body)
        except ValueError as err:
            raise ImageFormatError(f"manifest for {self.ref} is not JSON: {err}") from err
        media_type = doc.get("mediaType") or media_type
        return body, media_type, digest

    def blob(self, digest: str) -> BinaryIO:
        """A stream of the blob; the store verifies it while copying."""
        return self._request(f"{self.ref.remote_path}/blobs/{check_digest(digest)}")


def _pick_platform(index: dict, ref: Reference) -> str:  # type: ignore[type-arg]
    want_os, want_arch = host_platform()
    candidates = []
    for m in index.get("manifests") or []:
        p = m.get("platform") or {}
        if p.get("os") == want_os and p.get("architecture") == want_arch:
            candidates.append(m)
    if not candidates:
        have = sorted({f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
                       for m in index.get("manifests") or []})
        raise RegistryError(f"{ref} has no image for {want_os}/{want_arch}",
                            hint=f"it has: {', '.join(have) or 'nothing'}")
    # Prefer no variant or the plainest one (amd64 has none; arm64 often "v8").
    candidates.sort(key=lambda m: (m.get("platform") or {}).get("variant") or "")
    return check_digest(candidates[0]["digest"])


def pull(store: ImageStore, ref_text: str, *, progress: ProgressFn | None = None) -> ImageInfo:
    """Pull ``ref_text`` into the store and tag it.

    Raises:
        RegistryError: the registry is unreachable, refuses, or lacks the image.
        ImageFormatError / DigestMismatch: the registry sent bad content.
    """
    from .archive import rollback_on_error   # archive imports our media types
    ref = parse_reference(ref_text)
    client = RegistryClient(ref)
    # RepoDigests name what the tag points at (the index for multi-arch images).
    body, media_type, digest = client.manifest(ref.digest or ref.tag)
    doc = json.loads(body)
    if media_type in INDEX_TYPES or "manifests" in doc:
        body, media_type, _ = client.manifest(_pick_platform(doc, ref))
        doc = json.loads(body)
    if media_type not in MANIFEST_TYPES and "layers" not in doc:
        raise ImageFormatError(f"{ref} has an unsupported manifest type {media_type!r}",
                               hint="portside pulls OCI and Docker schema 2 images")
    try:
        config_desc = doc["config"]
        layer_descs = doc["layers"]
    except KeyError as err:
        raise ImageFormatError(f"manifest of {ref} has no {err.args[0]!r}") from err
    with client.blob(check_digest(config_desc["digest"])) as r:
        config = r.read(16 << 20)
    if "sha256:" + hashlib.sha256(config).hexdigest() != config_desc["digest"]:
        raise ImageFormatError(f"config of {ref} does not match its digest {config_desc['digest']}")
    layers = []
    for d in layer_descs:
        blob_digest = check_digest(d["digest"])
        if store.blobs.has(blob_digest):    # pulled before: the stored copy, not another download
            layers.append(LayerSource(open=partial(store.blobs.open, blob_digest), digest=blob_digest,
                                      size=store.blobs.path(blob_digest).stat().st_size,
                                      media_type=str(d.get("mediaType") or ""), trusted=True))
            continue
        layers.append(LayerSource(open=lambda dg=blob_digest: client.blob(dg), digest=blob_digest,
                                  size=int(d.get("size") or 0) or None,
                                  media_type=str(d.get("mediaType") or "")))
    name = f"{ref.name}:{ref.tag}" if ref.tag else None
    with rollback_on_error(store):     # a failed pull leaves no stray blob or layer
        return store.add_image(config, layers, [name] if name else [], manifest_digest=digest,
                               progress=progress, event="pull")
