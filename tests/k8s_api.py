"""A stand-in Kubernetes API server for the tests: the part of the REST API that
snakemake-executor-plugin-kubernetes 0.5.1 calls (through the `kubernetes` Python client), served over
plain HTTP on 127.0.0.1 with a bearer token, and a "kubelet" that runs each Job's pod for real.

What the plugin calls, and what this answers (JSON shaped as the client deserializes it):

    POST   /api/v1/namespaces/NS/secrets                     create_namespaced_secret  (once per run)
    DELETE /api/v1/namespaces/NS/secrets/NAME                delete_namespaced_secret  (at shutdown)
    POST   /apis/batch/v1/namespaces/NS/jobs                 create_namespaced_job     (one per attempt)
    GET    /apis/batch/v1/namespaces/NS/jobs/NAME/status     read_namespaced_job_status
    GET    /api/v1/namespaces/NS/pods?labelSelector=job-name=NAME   list_namespaced_pod
    GET    /api/v1/namespaces/NS/pods/NAME/log?container=snakemake&previous=true   (failed pods only)
    DELETE /api/v1/namespaces/NS/pods/NAME, DELETE .../jobs/NAME?propagationPolicy=Foreground

The server validates what a real API server would refuse and this plugin could send: names, restart
policy, resource quantities, requests above limits, and extended resources (nvidia.com/gpu) without a
limit ("Limit must be set for non overcommitable resources", as kube-apiserver says), volume mounts of
undeclared volumes, env var names, secret keys and size. A "scheduler" binds each pod to the first of
the given nodes whose labels match its nodeSelector, whose taints it tolerates and whose allocatable
resources still hold its requests (else it stays Pending, as on a cluster). The "kubelet" then runs the
container's command and args as a local process, in a new process group, in a fresh empty directory
(the pod's `workdir` emptyDir: its workingDir), with an environment built from nothing but the image's
variables, HOME/TMPDIR in the pod's own directory, the container's `env` (values, `secretKeyRef`) and
`envFrom` (secretRef) - no variable of the test process leaks in, and the pod shares no directory
with the driver. Its exit code becomes the container's terminated state and the Job's
succeeded/failed counts and conditions (Complete / Failed with BackoffLimitExceeded); its stdout and
stderr are the pod's log. A log read with previous=true is answered as a kubelet answers it for a
container that never restarted (restartPolicy Never): 400 `previous terminated container "snakemake"
in pod "..." not found`, unless `previous_logs="current"` (then the current log, as a plugin that
asked without previous=true would get).

"Images" are not pulled: an image name maps to the environment its container starts with (the test
points PATH at a venv with snakemake, wm and the S3 plugin). An unknown image leaves the pod waiting in
ErrImagePull, a missing secret in CreateContainerConfigError, as on a cluster. PersistentVolumeClaims
named in `claims` are directories on this machine, shared by every pod that mounts them; a volume may
be mounted at the working directory or below it only (there are no mount namespaces here). `faults`
kill a pod's processes (as the OOM killer) or evict it (the pod deleted, the Job failed) when a file
appears in it. Every Job body is recorded as received (`received_jobs`, and jobs/NNN-NAME.json).

Not emulated: watches, RBAC, admission webhooks, quotas and LimitRanges, node pressure, image pulls,
container isolation (the process runs as the test's user and sees the machine's files through
absolute paths; only its working directory and environment are the pod's), memory, CPU and disk limits
(recorded and scheduled, not enforced), GPUs (a node's nvidia.com/gpu is a number), networking, DNS,
service accounts, ttlSecondsAfterFinished and garbage collection.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import random
import re
import signal
import string
import subprocess
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
NATIVE_RESOURCES = {"cpu", "memory", "ephemeral-storage", "storage", "pods"}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
             "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def quantity(value) -> Fraction:
    """A Kubernetes resource quantity ("1900m", "32000M", "64Gi", 2) as an exact number."""
    match = re.fullmatch(r"(\+?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?", str(value).strip())
    if not match:
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {value!r}")
    return Fraction(match.group(1)) * _SUFFIXES[match.group(2) or ""]


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator", "Equal") == "Exists":
            if not t.get("key") or t["key"] == taint["key"]:
                return True
        elif t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of command, args and env values: $$ is a literal $, an undefined
    $(VAR) stays as written."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            if text[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if text[i + 1] == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    out.append(env[name] if name in env else text[i:end + 1])
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


class Events(list):
    """Lines of what happened, each stamped with the seconds since the harness was made."""

    def __init__(self):
        super().__init__()
        self.t0 = time.monotonic()

    def append(self, line: str) -> None:
        super().append(f"{time.monotonic() - self.t0:7.1f}s {line}")


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details, "code": self.code}


def not_found(kind: str, name: str, group: str = "") -> ApiError:
    resource = f"{kind}.{group}" if group else kind
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "group": group, "kind": kind})


@dataclass
class Node:
    name: str
    allocatable: dict[str, str]
    taints: list[dict] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


def default_nodes() -> list[Node]:
    """A CPU node and a GPU node tainted as GKE and the NVIDIA operator taint them."""
    return [Node("cpu-0", {"cpu": "16", "memory": "64Gi", "ephemeral-storage": "500Gi", "pods": "110"},
                 labels={"kubernetes.io/hostname": "cpu-0"}),
            Node("gpu-0", {"cpu": "16", "memory": "64Gi", "ephemeral-storage": "500Gi", "pods": "110",
                           "nvidia.com/gpu": "1"}, taints=[dict(GPU_TAINT)],
                 labels={"kubernetes.io/hostname": "gpu-0", "nvidia.com/gpu.present": "true"})]


@dataclass
class Fault:
    """Something that happens to a running pod once `ready(pod)` holds; `matches(pod)` picks the pods.
    action "kill": SIGKILL, as the OOM killer does, to the pod's processes whose command line contains
    `target` (the container's own process lives on and sees its command fail), or with target None to
    the whole container (exit 137, reason OOMKilled). action "evict": the pod is deleted, as by a node
    drain, a preemption or a lost node: SIGTERM, SIGKILL after the grace period, the pod object gone,
    and the Job controller counts it failed. Fires at most `times` times."""
    matches: Callable[["Pod"], bool]
    ready: Callable[["Pod"], bool]
    action: str = "kill"
    target: str | None = None
    times: int = 1
    fired: list[str] = field(default_factory=list)


def after_file(rule: str, attempt: int, path: str, action: str = "kill", target: str | None = None) -> Fault:
    """A Fault for the pod of `rule`'s attempt `attempt`, as soon as the file `path` exists in it: a path
    as the container sees it, absolute below its working directory or relative to it (mounted volumes
    included)."""
    def ready(pod: "Pod") -> bool:
        rel = os.path.relpath(path, pod.container.get("workingDir") or "/") if os.path.isabs(path) else path
        return (pod.workdir / rel).exists()
    return Fault(lambda pod: pod.rule == rule and pod.attempt == attempt, ready, action, target)


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (from /proc), children first."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Pod:
    name: str
    namespace: str
    job: str
    spec: dict
    labels: dict
    owner_uid: str
    root: Path
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=now)
    node: str | None = None
    phase: str = "Pending"
    waiting: tuple[str, str] | None = None     # (reason, message) while the container cannot start
    unschedulable: str | None = None
    proc: subprocess.Popen | None = None
    started: str | None = None
    finished: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    killed_reason: str | None = None
    env: dict | None = None
    argv: list[str] | None = None

    @property
    def container(self) -> dict:
        return self.spec["containers"][0]

    @property
    def workdir(self) -> Path:
        return self.root / "workdir"

    @property
    def log_path(self) -> Path:
        return self.root / "log"

    def _arg(self, pattern: str) -> str | None:
        text = " ".join(self.container.get("command", []) + self.container.get("args", []))
        match = re.search(pattern, text)
        return match.group(1) if match else None

    @property
    def rule(self) -> str | None:
        """The Snakemake rule this pod runs (from --target-jobs 'RULE:...')."""
        return self._arg(r"--target-jobs\s+'?([A-Za-z_]\w*):")

    @property
    def attempt(self) -> int | None:
        value = self._arg(r"--attempt\s+'?(\d+)")
        return int(value) if value else None

    def requests(self) -> dict[str, Fraction]:
        res = self.container.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}  # requests default to limits
        return {k: quantity(v) for k, v in merged.items()}

    def to_json(self) -> dict:
        cstatus = None
        c = self.container
        base = {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
                "started": False, "lastState": {}}
        if self.waiting:
            cstatus = {**base, "state": {"waiting": {"reason": self.waiting[0], "message": self.waiting[1]}}}
        elif self.phase == "Running":
            cstatus = {**base, "ready": True, "started": True, "containerID": f"harness://{self.proc.pid}",
                       "state": {"running": {"startedAt": self.started}}}
        elif self.phase in ("Succeeded", "Failed"):
            cstatus = {**base, "containerID": f"harness://{self.proc.pid if self.proc else 0}",
                       "state": {"terminated": {"exitCode": self.exit_code, "reason": self.reason,
                                                "startedAt": self.started, "finishedAt": self.finished,
                                                "containerID": f"harness://{self.proc.pid if self.proc else 0}"}}}
        conditions = [{"type": "PodScheduled", "status": "True" if self.node else "False",
                       "lastTransitionTime": self.created}]
        if not self.node and self.unschedulable:
            conditions[0].update(reason="Unschedulable", message=self.unschedulable)
        status = {"phase": self.phase, "conditions": conditions, "qosClass": "Burstable"}
        if self.node:
            status.update(hostIP="127.0.0.1", podIP="127.0.0.1", startTime=self.created)
        if cstatus:
            status["containerStatuses"] = [cstatus]
        spec = copy.deepcopy(self.spec)
        if self.node:
            spec["nodeName"] = self.node
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid,
                             "creationTimestamp": self.created, "labels": dict(self.labels),
                             "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": self.job,
                                                  "uid": self.owner_uid, "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "spec": spec, "status": status}


@dataclass
class Job:
    body: dict
    pods: list[str] = field(default_factory=list)
    start_time: str | None = None
    completion_time: str | None = None
    succeeded: int = 0
    failed: int = 0
    conditions: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]

    @property
    def done(self) -> bool:
        return any(c["type"] in ("Complete", "Failed") for c in self.conditions)

    def to_json(self, active: int, ready: int) -> dict:
        status = {"startTime": self.start_time, "active": active or None, "ready": ready,
                  "succeeded": self.succeeded or None, "failed": self.failed or None, "terminating": 0,
                  "uncountedTerminatedPods": {}}
        if self.completion_time:
            status["completionTime"] = self.completion_time
        if self.conditions:
            status["conditions"] = self.conditions
        body = copy.deepcopy(self.body)
        body["status"] = {k: v for k, v in status.items() if v is not None}
        return body


class FakeKubernetes:
    """The API server, scheduler and kubelet in one object; `start()` serves on 127.0.0.1 (a free port)
    from a thread, `stop()` kills every pod still running (by its process group) and shuts down."""

    def __init__(self, root: Path, images: dict[str, dict[str, str]], namespaces=("default",),
                 nodes: list[Node] | None = None, claims=(), faults: list[Fault] = (),
                 previous_logs: str = "kubelet", token: str | None = None, kill_grace_s: float = 2.0):
        assert previous_logs in ("kubelet", "current")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.images = images
        self.namespaces = set(namespaces)
        self.nodes = nodes if nodes is not None else default_nodes()
        self.claims = {name: self.root / "pvc" / name for name in claims}
        for path in self.claims.values():
            path.mkdir(parents=True, exist_ok=True)
        self.faults = list(faults)
        self.previous_logs = previous_logs
        self.token = token or uuid.uuid4().hex
        self.kill_grace_s = kill_grace_s
        self.lock = threading.RLock()
        self.secrets: dict[tuple[str, str], dict] = {}
        self.jobs: dict[tuple[str, str], Job] = {}
        self.pods: dict[tuple[str, str], Pod] = {}
        self.history: list[Pod] = []                 # every pod ever created, deleted ones too
        self.received_jobs: list[dict] = []          # every Job body as received, in order
        self.received_secrets: list[dict] = []
        self.requests: list[tuple[str, str, int]] = []   # (method, path?query, status code)
        self.deleted: list[tuple[str, str]] = []     # (kind, name)
        self.events = Events()                       # a readable trace: scheduling, starts, exits, kills
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "FakeKubernetes":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._threads = [threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                          daemon=True, name="k8s-api"),
                         threading.Thread(target=self._kubelet, daemon=True, name="k8s-kubelet")]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=10)
        with self.lock:
            for pod in self.history:
                self._kill(pod, grace=0)
            for pod in self.history:
                if pod.proc and pod.proc.poll() is None:
                    pod.proc.wait(timeout=10)

    def __enter__(self) -> "FakeKubernetes":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig pointing at this server (JSON is YAML): pass it as KUBECONFIG."""
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "wm-harness", "preferences": {},
                  "clusters": [{"name": "wm-harness", "cluster": {"server": self.url}}],
                  "users": [{"name": "wm-harness", "user": {"token": self.token}}],
                  "contexts": [{"name": "wm-harness", "context": {"cluster": "wm-harness", "user": "wm-harness",
                                                                   "namespace": namespace}}]}
        Path(path).write_text(json.dumps(config, indent=1))
        return Path(path)

    # --- what the tests read -------------------------------------------------------------------
    def pods_of(self, rule: str) -> list[Pod]:
        """Every pod (deleted ones too) that ran `rule`, in order of creation."""
        with self.lock:
            return [p for p in self.history if p.rule == rule]

    def log(self, pod: Pod) -> str:
        return pod.log_path.read_text(errors="replace") if pod.log_path.exists() else ""

    def unhandled(self) -> list[tuple[str, str, int]]:
        return [r for r in self.requests if r[2] in (404, 405) and "/log" not in r[1] and "DELETE" != r[0]]

    # --- the API -------------------------------------------------------------------------------
    def _handler(self):
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet; requests are recorded in cluster.requests
                pass

            def _serve(self, method: str):
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    if self.headers.get("Authorization") != f"Bearer {cluster.token}":
                        raise ApiError(401, "Unauthorized", "Unauthorized")
                    body = json.loads(raw) if raw else None
                    code, payload = cluster.dispatch(method, url.path, query, body)
                except ApiError as e:
                    code, payload = e.code, e.status()
                except Exception as e:  # a harness bug: say so in the answer
                    code, payload = 500, ApiError(500, "InternalError", f"harness: {e!r}").status()
                with cluster.lock:
                    cluster.requests.append((method, self.path, code))
                if isinstance(payload, str):
                    data, ctype = payload.encode(), "text/plain"
                else:
                    data, ctype = json.dumps(payload).encode(), "application/json"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_DELETE(self):
                self._serve("DELETE")

            def do_PUT(self):
                self._serve("PUT")

            def do_PATCH(self):
                self._serve("PATCH")

        return Handler

    ROUTES = [
        ("GET", r"/version", "version"),
        ("GET", r"/api/v1/nodes", "list_nodes"),
        ("POST", r"/api/v1/namespaces/(?P<ns>[^/]+)/secrets", "create_secret"),
        ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/secrets/(?P<name>[^/]+)", "read_secret"),
        ("DELETE", r"/api/v1/namespaces/(?P<ns>[^/]+)/secrets/(?P<name>[^/]+)", "delete_secret"),
        ("POST", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs", "create_job"),
        ("GET", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs", "list_jobs"),
        ("GET", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)(?:/status)?", "read_job"),
        ("DELETE", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)", "delete_job"),
        ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods", "list_pods"),
        ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log", "read_log"),
        ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)", "read_pod"),
        ("DELETE", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)", "delete_pod"),
    ]

    def dispatch(self, method: str, path: str, query: dict, body) -> tuple[int, object]:
        for verb, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                with self.lock:
                    return getattr(self, "_" + name)(query=query, body=body, **match.groupdict())
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _version(self, **_):
        return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-wm-harness", "platform": "linux/amd64"}

    def _list_nodes(self, **_):
        items = [{"metadata": {"name": n.name, "labels": n.labels},
                  "spec": {"taints": n.taints},
                  "status": {"allocatable": n.allocatable, "capacity": n.allocatable}} for n in self.nodes]
        return 200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items}

    def _namespace(self, ns: str) -> None:
        if ns not in self.namespaces:
            raise not_found("namespaces", ns)

    def _meta(self, body: dict, ns: str, kind: str, group: str = "") -> dict:
        meta = body.setdefault("metadata", {}) or {}
        body["metadata"] = meta
        name = meta.get("name") or ""
        if not name or len(name) > 253 or not DNS_SUBDOMAIN.fullmatch(name):
            raise self._invalid(kind, group, name, "metadata.name", name,
                                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                                "characters, '-' or '.', and must start and end with an alphanumeric character")
        if meta.get("namespace") not in (None, ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                                              "namespace sent on the request")
        meta.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=now(), resourceVersion="1")
        return meta

    @staticmethod
    def _invalid(kind: str, group: str, name: str, path: str, value, detail: str, required=False) -> ApiError:
        what = f"{kind}.{group}" if group else kind
        kind_title = {"jobs": "Job", "secrets": "Secret"}.get(kind, kind)
        resource = f"{kind_title}.{group}" if group else kind_title
        cause = f"{path}: Required value: {detail}" if required else f"{path}: Invalid value: {json.dumps(value)}: {detail}"
        return ApiError(422, "Invalid", f'{resource} "{name}" is invalid: {cause}',
                        {"name": name, "group": group, "kind": what.split(".")[0],
                         "causes": [{"reason": "FieldValueRequired" if required else "FieldValueInvalid",
                                     "message": detail, "field": path}]})

    # secrets
    def _create_secret(self, ns, body, **_):
        self._namespace(ns)
        body = copy.deepcopy(body or {})
        self.received_secrets.append(copy.deepcopy(body))
        meta = self._meta(body, ns, "secrets")
        name = meta["name"]
        if (ns, name) in self.secrets:
            raise ApiError(409, "AlreadyExists", f'secrets "{name}" already exists',
                           {"name": name, "kind": "secrets"})
        size = 0
        for key, value in (body.get("data") or {}).items():
            if not SECRET_KEY.fullmatch(key):
                raise self._invalid("secrets", "", name, f"data[{key}]", key,
                                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
            try:
                size += len(base64.b64decode(value, validate=True))
            except ValueError:
                raise ApiError(400, "BadRequest", f"illegal base64 data in data[{key}]")
        size += sum(len(v.encode()) for v in (body.get("stringData") or {}).values())
        if size > 1024 * 1024:
            raise self._invalid("secrets", "", name, "data", "<omitted>",
                                "Too long: must have at most 1048576 bytes")
        body.setdefault("type", "Opaque")
        body.update(apiVersion="v1", kind="Secret")
        self.secrets[(ns, name)] = body
        self.events.append(f"secret {ns}/{name} created: keys {sorted(body.get('data') or {})}")
        return 201, body

    def _read_secret(self, ns, name, **_):
        if (ns, name) not in self.secrets:
            raise not_found("secrets", name)
        return 200, self.secrets[(ns, name)]

    def _delete_secret(self, ns, name, **_):
        if self.secrets.pop((ns, name), None) is None:
            raise not_found("secrets", name)
        self.deleted.append(("secret", name))
        self.events.append(f"secret {ns}/{name} deleted")
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": name, "kind": "secrets", "uid": ""}}

    # jobs
    def _validate_job(self, body: dict, name: str) -> None:
        def bad(path, value, detail, required=False):
            return self._invalid("jobs", "batch", name, path, value, detail, required)

        spec = body.get("spec") or {}
        if spec.get("backoffLimit") is not None and spec["backoffLimit"] < 0:
            raise bad("spec.backoffLimit", spec["backoffLimit"], "must be greater than or equal to 0")
        template = (spec.get("template") or {}).get("spec")
        if not template:
            raise bad("spec.template.spec", None, "", required=True)
        base = "spec.template.spec"
        if template.get("restartPolicy") not in ("Never", "OnFailure"):
            raise bad(f"{base}.restartPolicy", template.get("restartPolicy"),
                      'supported values: "OnFailure", "Never"')
        volumes = {v["name"]: v for v in template.get("volumes") or []}
        containers = template.get("containers") or []
        if not containers:
            raise bad(f"{base}.containers", None, "", required=True)
        for i, c in enumerate(containers):
            cpath = f"{base}.containers[{i}]"
            if not DNS_LABEL.fullmatch(c.get("name") or "") or len(c["name"]) > 63:
                raise bad(f"{cpath}.name", c.get("name"), "a lowercase RFC 1123 label")
            if not c.get("image"):
                raise bad(f"{cpath}.image", None, "", required=True)
            for m in c.get("volumeMounts") or []:
                if m.get("name") not in volumes:
                    raise bad(f"{cpath}.volumeMounts.name", m.get("name"), "not found")
                if not str(m.get("mountPath", "")).startswith("/"):
                    raise bad(f"{cpath}.volumeMounts.mountPath", m.get("mountPath"), "must be an absolute path")
            for j, e in enumerate(c.get("env") or []):
                if not ENV_NAME.fullmatch(e.get("name") or ""):
                    raise bad(f"{cpath}.env[{j}].name", e.get("name"), "a valid environment variable name")
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref is not None and (not ref.get("key") or not ref.get("name")):
                    raise bad(f"{cpath}.env[{j}].valueFrom.secretKeyRef", ref, "", required=True)
            res = c.get("resources") or {}
            parsed = {}
            for kind in ("requests", "limits"):
                for key, value in (res.get(kind) or {}).items():
                    try:
                        parsed[(kind, key)] = quantity(value)
                    except ValueError as e:
                        raise bad(f"{cpath}.resources.{kind}[{key}]", value, str(e))
                    if parsed[(kind, key)] < 0:
                        raise bad(f"{cpath}.resources.{kind}[{key}]", value, "must be greater than or equal to 0")
            for (kind, key), q in parsed.items():
                overcommit = key in NATIVE_RESOURCES
                if not overcommit and q.denominator != 1:
                    raise bad(f"{cpath}.resources.{kind}[{key}]", str(res[kind][key]), "must be an integer")
                if kind != "requests":
                    continue
                limit = parsed.get(("limits", key))
                if limit is None:
                    if not overcommit:  # kube-apiserver: ValidateResourceRequirements
                        raise bad(f"{cpath}.resources.limits", None,
                                  "Limit must be set for non overcommitable resources", required=True)
                elif not overcommit and q != limit:
                    raise bad(f"{cpath}.resources.requests", str(res["requests"][key]),
                              f"must be equal to {key} limit of {res['limits'][key]}")
                elif q > limit:
                    raise bad(f"{cpath}.resources.requests", str(res["requests"][key]),
                              f"must be less than or equal to {key} limit of {res['limits'][key]}")

    def _create_job(self, ns, body, **_):
        self._namespace(ns)
        received = copy.deepcopy(body or {})
        self.received_jobs.append(received)
        (self.root / "jobs").mkdir(exist_ok=True)
        name = (received.get("metadata") or {}).get("name") or f"unnamed-{len(self.received_jobs)}"
        (self.root / "jobs" / f"{len(self.received_jobs):03d}-{name}.json").write_text(json.dumps(received, indent=1))
        body = copy.deepcopy(body or {})
        meta = self._meta(body, ns, "jobs", "batch")
        name = meta["name"]
        if len(name) > 63:
            raise self._invalid("jobs", "batch", name, "metadata.name", name, "must be no more than 63 characters")
        self._validate_job(body, name)
        if (ns, name) in self.jobs:
            raise ApiError(409, "AlreadyExists", f'jobs.batch "{name}" already exists',
                           {"name": name, "group": "batch", "kind": "jobs"})
        spec = body["spec"]
        for key, value in (("completions", 1), ("parallelism", 1), ("backoffLimit", 6),
                           ("completionMode", "NonIndexed"), ("suspend", False)):
            spec.setdefault(key, value)
        labels = {"batch.kubernetes.io/controller-uid": meta["uid"], "batch.kubernetes.io/job-name": name,
                  "controller-uid": meta["uid"], "job-name": name}
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": meta["uid"]}}
        template = spec["template"]
        template.setdefault("metadata", {})
        template["metadata"] = {**(template["metadata"] or {})}
        template["metadata"]["labels"] = {**(template["metadata"].get("labels") or {}), **labels}
        for c in template["spec"]["containers"]:
            c.setdefault("imagePullPolicy", "Always" if c["image"].endswith(":latest") or ":" not in c["image"]
                         else "IfNotPresent")
        body.update(apiVersion="batch/v1", kind="Job")
        job = Job(body, start_time=now())
        self.jobs[(ns, name)] = job
        self.events.append(f"job {ns}/{name} created")
        self._new_pod(ns, job)
        return 201, job.to_json(active=1, ready=0)

    def _new_pod(self, ns: str, job: Job) -> Pod:
        name = f"{job.name}-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        template = job.body["spec"]["template"]
        pod = Pod(name, ns, job.name, copy.deepcopy(template["spec"]), dict(template["metadata"]["labels"]),
                  job.body["metadata"]["uid"], self.root / "pods" / name)
        self.pods[(ns, name)] = pod
        self.history.append(pod)
        job.pods.append(name)
        return pod

    def _job_json(self, job: Job) -> dict:
        pods = [self.pods[(job.body["metadata"]["namespace"], p)] for p in job.pods
                if (job.body["metadata"]["namespace"], p) in self.pods]
        active = sum(p.phase in ("Pending", "Running") for p in pods)
        ready = sum(p.phase == "Running" for p in pods)
        return job.to_json(active, ready)

    def _list_jobs(self, ns, **_):
        items = [self._job_json(j) for (n, _), j in self.jobs.items() if n == ns]
        return 200, {"kind": "JobList", "apiVersion": "batch/v1", "metadata": {}, "items": items}

    def _read_job(self, ns, name, **_):
        if (ns, name) not in self.jobs:
            raise not_found("jobs", name, "batch")
        return 200, self._job_json(self.jobs[(ns, name)])

    def _delete_job(self, ns, name, query, **_):
        job = self.jobs.pop((ns, name), None)
        if job is None:
            raise not_found("jobs", name, "batch")
        policy = query.get("propagationPolicy", "Background")
        if policy != "Orphan":
            for pod_name in job.pods:
                pod = self.pods.pop((ns, pod_name), None)
                if pod:
                    self._kill(pod)
                    self.deleted.append(("pod", pod_name))
        self.deleted.append(("job", name))
        self.events.append(f"job {ns}/{name} deleted ({policy})")
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": name, "group": "batch", "kind": "jobs", "uid": job.body["metadata"]["uid"]}}

    # pods
    @staticmethod
    def _selects(selector: str, labels: dict) -> bool:
        for term in filter(None, (t.strip() for t in selector.split(","))):
            if "!=" in term:
                k, v = term.split("!=", 1)
                if labels.get(k.strip()) == v.strip():
                    return False
            elif "=" in term:
                k, v = re.split(r"==?", term, maxsplit=1)
                if labels.get(k.strip()) != v.strip():
                    return False
            elif term.startswith("!"):
                if term[1:] in labels:
                    return False
            elif term not in labels:
                return False
        return True

    def _list_pods(self, ns, query, **_):
        if query.get("fieldSelector"):
            raise ApiError(400, "BadRequest", "harness: fieldSelector is not supported")
        selector = query.get("labelSelector", "")
        items = [p.to_json() for (n, _), p in self.pods.items() if n == ns and self._selects(selector, p.labels)]
        return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}

    def _pod(self, ns, name) -> Pod:
        if (ns, name) not in self.pods:
            raise not_found("pods", name)
        return self.pods[(ns, name)]

    def _read_pod(self, ns, name, **_):
        return 200, self._pod(ns, name).to_json()

    def _read_log(self, ns, name, query, **_):
        pod = self._pod(ns, name)
        container = query.get("container") or pod.container["name"]
        if container != pod.container["name"]:
            raise ApiError(400, "BadRequest", f'container {container} is not valid for pod {name}')
        if query.get("previous", "false").lower() in ("true", "1") and self.previous_logs == "kubelet":
            # kubelet's validateContainerLogStatus: no lastState.terminated -> this error, as 400
            raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found')
        if pod.waiting or pod.phase == "Pending":
            reason = pod.waiting[0] if pod.waiting else "ContainerCreating"
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        text = self.log(pod)
        if query.get("tailLines"):
            text = "".join(text.splitlines(keepends=True)[-int(query["tailLines"]):])
        return 200, text

    def _delete_pod(self, ns, name, **_):
        pod = self._pod(ns, name)
        del self.pods[(ns, name)]
        self._kill(pod)
        self.deleted.append(("pod", name))
        self.events.append(f"pod {ns}/{name} deleted")
        pod_json = pod.to_json()
        pod_json["metadata"]["deletionTimestamp"] = now()
        return 200, pod_json

    # --- scheduler and kubelet -----------------------------------------------------------------
    def _kill(self, pod: Pod, grace: float | None = None) -> None:
        """Stop a pod's process group: SIGTERM, then SIGKILL after the grace period."""
        if not pod.proc or pod.proc.poll() is not None:
            return
        grace = self.kill_grace_s if grace is None else grace
        try:
            os.killpg(pod.proc.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        except ProcessLookupError:
            return
        if grace > 0:
            def later(proc=pod.proc):
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            threading.Thread(target=later, daemon=True).start()

    def _used(self, node: Node) -> dict[str, Fraction]:
        used: dict[str, Fraction] = {}
        for p in self.pods.values():
            if p.node == node.name and p.phase in ("Pending", "Running"):
                for k, v in p.requests().items():
                    used[k] = used.get(k, 0) + v
        return used

    def _schedule(self, pod: Pod) -> None:
        requests = pod.requests()
        reasons = []
        for node in self.nodes:
            selector = pod.spec.get("nodeSelector") or {}
            if any(node.labels.get(k) != v for k, v in selector.items()):
                reasons.append(f"{node.name}: didn't match Pod's node affinity/selector")
                continue
            untolerated = [t for t in node.taints if t["effect"] in ("NoSchedule", "NoExecute")
                           and not tolerates(pod.spec.get("tolerations"), t)]
            if untolerated:
                reasons.append(f"{node.name}: had untolerated taint {{{untolerated[0]['key']}: "
                               f"{untolerated[0].get('value', '')}}}")
                continue
            used = self._used(node)
            short = [k for k, v in requests.items()
                     if used.get(k, 0) + v > quantity(node.allocatable.get(k, "0"))]
            if short:
                reasons.append(f"{node.name}: Insufficient {', '.join(sorted(short))}")
                continue
            pod.node = node.name
            pod.unschedulable = None
            self.events.append(f"pod {pod.name} ({pod.rule} attempt {pod.attempt}) scheduled on {node.name}")
            return
        message = f"0/{len(self.nodes)} nodes are available: " + "; ".join(reasons)
        if pod.unschedulable != message:
            self.events.append(f"pod {pod.name} unschedulable: {message}")
        pod.unschedulable = message

    def _container_env(self, pod: Pod) -> dict[str, str]:
        c = pod.container
        image_env = self.images[c["image"]]
        pod.root.mkdir(parents=True, exist_ok=True)
        for d in ("home", "tmp"):
            (pod.root / d).mkdir(exist_ok=True)
        env = {"HOSTNAME": pod.name, "HOME": str(pod.root / "home"), "TMPDIR": str(pod.root / "tmp"),
               "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": self.url.rsplit(":", 1)[1]}
        env.update(image_env)

        def secret(name: str) -> dict:
            s = self.secrets.get((pod.namespace, name))
            if s is None:
                raise LookupError(f'secret "{name}" not found')
            return s

        for source in c.get("envFrom") or []:
            if "secretRef" in source:
                data = secret(source["secretRef"]["name"]).get("data") or {}
                for key, value in data.items():
                    env[source.get("prefix", "") + key] = base64.b64decode(value).decode()
            else:
                raise LookupError(f"harness: envFrom {sorted(source)} is not supported")
        for e in c.get("env") or []:
            if "value" in e and e["value"] is not None:
                env[e["name"]] = expand(e["value"], env)
            elif (e.get("valueFrom") or {}).get("secretKeyRef"):
                ref = e["valueFrom"]["secretKeyRef"]
                data = secret(ref["name"]).get("data") or {}
                if ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise LookupError(f"couldn't find key {ref['key']} in Secret {pod.namespace}/{ref['name']}")
                env[e["name"]] = base64.b64decode(data[ref["key"]]).decode()
            elif e.get("valueFrom"):
                raise LookupError(f"harness: valueFrom {sorted(e['valueFrom'])} is not supported")
            else:
                env[e["name"]] = ""
        return env

    def _prepare_volumes(self, pod: Pod) -> Path:
        """Lay out the pod's volumes; returns the working directory. The volume mounted at workingDir
        (or, without one, an empty directory) is the cwd; other volumes are linked in below it."""
        c = pod.container
        volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
        workdir_path = c.get("workingDir") or "/"
        mounts = sorted(c.get("volumeMounts") or [], key=lambda m: len(m["mountPath"]))
        pod.workdir.mkdir(parents=True, exist_ok=True)

        def source(volume: dict) -> Path:
            if "emptyDir" in volume:
                path = pod.root / "volumes" / volume["name"]
                path.mkdir(parents=True, exist_ok=True)
                return path
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                if claim not in self.claims:
                    raise LookupError(f'persistentvolumeclaim "{claim}" not found')
                return self.claims[claim]
            raise LookupError(f"harness: volume source {sorted(volume)} is not supported")

        for m in mounts:
            src = source(volumes[m["name"]])
            rel = os.path.relpath(m["mountPath"], workdir_path)
            if m["mountPath"].rstrip("/") == workdir_path.rstrip("/"):
                pod.workdir.rmdir()  # the volume itself is the working directory
                pod.workdir.symlink_to(src, target_is_directory=True)
            elif rel.startswith(".."):
                raise LookupError(f"harness: cannot mount {m['mountPath']} outside the working directory "
                                  f"{workdir_path} (no mount namespaces here)")
            else:
                target = pod.workdir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(src, target_is_directory=True)
        return pod.workdir.resolve()

    def _start(self, pod: Pod) -> None:
        c = pod.container
        if c["image"] not in self.images:
            pod.waiting = ("ErrImagePull", f'harness: image "{c["image"]}" is not one of {sorted(self.images)}')
            self.events.append(f"pod {pod.name}: {pod.waiting[1]}")
            return
        try:
            env = self._container_env(pod)
            cwd = self._prepare_volumes(pod)
        except LookupError as e:
            if not pod.waiting:
                self.events.append(f"pod {pod.name}: CreateContainerConfigError: {e}")
            pod.waiting = ("CreateContainerConfigError", str(e))
            return
        argv = [expand(a, env) for a in (c.get("command") or []) + (c.get("args") or [])]
        if not argv:
            pod.waiting = ("CreateContainerError", "harness: the container has no command")
            return
        pod.waiting, pod.env, pod.argv = None, env, argv
        log = open(pod.log_path, "wb")
        try:
            pod.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            pod.waiting = ("RunContainerError", str(e))
            return
        finally:
            log.close()
        pod.phase, pod.started = "Running", now()
        self.events.append(f"pod {pod.name} ({pod.rule} attempt {pod.attempt}) started, pid {pod.proc.pid}")

    def _finish(self, pod: Pod, job: Job | None) -> None:
        code = pod.proc.returncode
        pod.exit_code = 128 - code if code < 0 else code
        pod.finished = now()
        pod.phase = "Succeeded" if pod.exit_code == 0 else "Failed"
        pod.reason = "Completed" if pod.exit_code == 0 else (pod.killed_reason or "Error")
        self.events.append(f"pod {pod.name} ({pod.rule} attempt {pod.attempt}) exited {pod.exit_code} ({pod.reason})")
        if job is None or job.done:
            return
        if pod.exit_code == 0:
            job.succeeded += 1
            if job.succeeded >= job.body["spec"].get("completions", 1):
                job.completion_time = now()
                job.conditions = [{"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                                   "message": "Reached expected number of succeeded pods",
                                   "lastProbeTime": now(), "lastTransitionTime": now()},
                                  {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                                   "message": "Reached expected number of succeeded pods",
                                   "lastProbeTime": now(), "lastTransitionTime": now()}]
        else:
            job.failed += 1
            self._job_failed_or_retry(job, pod)

    def _job_failed_or_retry(self, job: Job, pod: Pod) -> None:
        if job.failed > job.body["spec"].get("backoffLimit", 6):
            job.conditions = [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                               "message": "Job has reached the specified backoff limit",
                               "lastProbeTime": now(), "lastTransitionTime": now()},
                              {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                               "message": "Job has reached the specified backoff limit",
                               "lastProbeTime": now(), "lastTransitionTime": now()}]
            self.events.append(f"job {job.name} failed (BackoffLimitExceeded)")
        else:
            self._new_pod(pod.namespace, job)  # the Job controller's retry (backoffLimit > 0)

    def _kubelet(self) -> None:
        while not self._stop.wait(0.1):
            with self.lock:
                for pod in list(self.pods.values()):
                    job = self.jobs.get((pod.namespace, pod.job))
                    if pod.phase == "Pending":
                        if pod.node is None:
                            self._schedule(pod)
                        if pod.node is not None:
                            self._start(pod)
                    elif pod.phase == "Running":
                        if pod.proc.poll() is not None:
                            self._finish(pod, job)
                            continue
                        for fault in self.faults:
                            if len(fault.fired) < fault.times and fault.matches(pod) and fault.ready(pod):
                                fault.fired.append(pod.name)
                                self._apply(fault, pod, job)
                                break

    def _apply(self, fault: Fault, pod: Pod, job: Job | None) -> None:
        what = f"pod {pod.name} ({pod.rule} attempt {pod.attempt})"
        if fault.action == "evict":
            del self.pods[(pod.namespace, pod.name)]
            self._kill(pod)
            pod.phase, pod.reason, pod.finished = "Failed", "Evicted", now()
            self.deleted.append(("pod", pod.name))
            self.events.append(f"{what} evicted and deleted by the harness")
            if job is not None and not job.done:
                job.failed += 1
                self._job_failed_or_retry(job, pod)
        elif fault.target is None:
            pod.killed_reason = "OOMKilled"
            os.killpg(pod.proc.pid, signal.SIGKILL)
            self.events.append(f"{what}: the harness killed the container (OOMKilled)")
        else:
            pids = [p for p in descendants(pod.proc.pid) if fault.target in cmdline(p)]
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.events.append(f"{what}: the harness killed {len(pids)} process(es) running {fault.target!r}")


def wheel_from_installed(distribution: str, dest: Path) -> Path:
    """A wheel of an installed pure-Python distribution, rebuilt from its installed files (offline), so
    that pods can `pip install` it from a local folder as a cluster without PyPI would have to."""
    from importlib.metadata import distribution as find

    dist = find(distribution)
    info = next(p for p in dist.files if p.parts[0].endswith(".dist-info"))
    info_dir = info.parts[0]
    wheel_meta = (Path(dist.locate_file(info_dir)) / "WHEEL").read_text()
    tag = re.search(r"^Tag: (\S+)$", wheel_meta, re.M).group(1)
    name = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-{tag}.whl"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / name
    skip = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    records = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for f in dist.files:
            if "__pycache__" in f.parts or f.suffix == ".pyc" or str(f).startswith("..") or \
                    (f.parts[0] == info_dir and f.name in skip):
                continue
            data = Path(dist.locate_file(f)).read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            whl.writestr(str(f), data)
            records.append(f"{f},sha256={digest},{len(data)}")
        records.append(f"{info_dir}/RECORD,,")
        whl.writestr(f"{info_dir}/RECORD", "\n".join(records) + "\n")
    return path
