"""An OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

Serves /v1/chat/completions, /v1/files and /v1/batches well enough for the real `openai`
client, with programmable trouble: 429 storms with retry headers, 5xx, hangs past the
client's timeout, malformed bodies, and judge outputs that are garbage or out of range. It
can enforce a request rate (a token bucket) and add latency, and it counts what it was paid
for, per distinct request, so tests can prove nothing was paid twice.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_BLOCK = re.compile(
    r'<response-(?P<tag>[0-9a-f]+) label="(?P<label>[A-Z])">\n(?P<text>.*?)\n</response-(?P=tag)>',
    re.DOTALL,
)
_QUALITY = re.compile(r"\[\[q=(\d+)\]\]")


def intended_score(text: str) -> int:
    """The score the fake judge gives a response: its ``[[q=N]]`` marker, else 1 + words % 10."""
    m = _QUALITY.search(text)
    return int(m.group(1)) if m else 1 + len(text.split()) % 10


def default_judge(body: dict[str, Any]) -> str:
    """Rate every delimited response; quote it in the rationale, as real judges often do."""
    user = body["messages"][-1]["content"]
    system = body["messages"][0]["content"] if body["messages"] else ""
    if system.startswith("You are a knowledgeable"):
        return "Reference: " + " ".join(user.split()[:40])
    ratings = [
        {
            "label": m.group("label"),
            "rationale": f"It says {m.group('text')[:60]!r}.",
            "score": intended_score(m.group("text")),
        }
        for m in _BLOCK.finditer(user)
    ]
    verdict = json.dumps({"ratings": ratings})
    if "response_format" in body:
        return verdict
    # without structured output a chatty judge quotes the responses before its own verdict
    quoted = " ".join(f"Response {r['label']} reads: {r['rationale']}" for r in ratings)
    return f"{quoted}\nMy verdict:\n```json\n{verdict}\n```"


@dataclass
class Action:
    """What to do with one upcoming chat request instead of answering normally."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    content: str | None = None
    raw_body: bytes | None = None


class FakeOpenAI:
    """The server; start() it, point a client at ``base_url``, stop() it."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        rpm: float | None = None,
        judge: Callable[[dict[str, Any]], str] = default_judge,
    ) -> None:
        self.latency = latency
        self.rpm = rpm
        self.judge = judge
        self.structured = True
        self.actions: deque[Action] = deque()
        self.lock = threading.Lock()
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.paid: Counter[str] = Counter()
        self.ok_times: list[float] = []
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_polls_to_finish = 2
        self.seen_auth: set[str] = set()
        self._tokens = 0.0
        self._refilled = time.monotonic()
        self._server: ThreadingHTTPServer | None = None

    # -- control -----------------------------------------------------------------------

    def then(self, n: int = 1, **action: Any) -> FakeOpenAI:
        """The next ``n`` chat requests get ``Action(**action)`` instead of a normal answer."""
        with self.lock:
            for _ in range(n):
                self.actions.append(Action(**action))
        return self

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._dispatch(self, "POST")

            def do_GET(self) -> None:
                fake._dispatch(self, "GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._tokens = (self.rpm or 0) / 60.0
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- HTTP --------------------------------------------------------------------------

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _dispatch(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        self.seen_auth.add(h.headers.get("Authorization", ""))
        path = h.path.split("?")[0]
        if method == "POST" and path == "/v1/chat/completions":
            self._chat(h, json.loads(body))
        elif method == "POST" and path == "/v1/files":
            self._upload(h, body)
        elif method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            file_id = path.split("/")[3]
            if file_id not in self.files:
                self._send(h, 404, {"error": {"message": "no such file"}})
            else:
                self._send(h, 200, None, raw=self.files[file_id])
        elif method == "POST" and path == "/v1/batches":
            self._create_batch(h, json.loads(body))
        elif method == "GET" and path.startswith("/v1/batches/"):
            self._retrieve_batch(h, path.split("/")[3])
        else:
            self._send(h, 404, {"error": {"message": f"no route {method} {path}"}})

    def _over_rate(self) -> float:
        """Seconds until a request would be allowed, or 0 (and spend a token)."""
        if not self.rpm:
            return 0.0
        per_second = self.rpm / 60.0
        with self.lock:
            now = time.monotonic()
            self._tokens = min(per_second, self._tokens + (now - self._refilled) * per_second)
            self._refilled = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / per_second

    def completion(self, body: dict[str, Any], content: str | None = None) -> dict[str, Any]:
        """A chat.completion object answering ``body``."""
        text = self.judge(body) if content is None else content
        prompt = sum(len(m["content"]) for m in body["messages"]) // 4 + 1
        produced = len(text) // 4 + 1
        return {
            "id": "chatcmpl-" + hashlib.sha256(text.encode()).hexdigest()[:12],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": produced,
                "total_tokens": prompt + produced,
            },
        }

    def _chat(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            self.requests += 1
            action = self.actions.popleft() if self.actions else Action()
        wait = self._over_rate()
        if wait > 0:
            with self.lock:
                self.statuses[429] += 1
            ms = str(int(wait * 1000) + 1)
            self._send(
                h,
                429,
                {"error": {"message": "rate limit", "type": "requests", "code": "rate_limit"}},
                {"retry-after-ms": ms, "retry-after": f"{wait:.3f}"},
            )
            return
        if action.hang:
            time.sleep(action.hang)
            return
        if self.latency:
            time.sleep(self.latency)
        if not self.structured:
            body = {k: v for k, v in body.items() if k != "response_format"}
        with self.lock:
            self.statuses[action.status] += 1
        if action.status != 200:
            self._send(
                h,
                action.status,
                {"error": {"message": f"fake error {action.status}", "type": "server_error"}},
                action.headers,
            )
            return
        if action.raw_body is not None:
            self._send(h, 200, None, raw=action.raw_body)
            return
        payload = self.completion(body, action.content)
        key = hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest()
        with self.lock:
            self.paid[key] += 1
            self.ok_times.append(time.monotonic())
        self._send(h, 200, payload)

    def _upload(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        head = f"Content-Type: {h.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + body)
        data, purpose, filename = b"", "", "upload"
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if name == "file":
                data = payload
                filename = part.get_filename() or filename
            elif name == "purpose":
                purpose = payload.decode()
        with self.lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = data
        self._send(
            h,
            200,
            {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
            },
        )

    def _batch_object(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def _create_batch(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            lines = self.files.get(body["input_file_id"], b"").decode().splitlines()
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body["endpoint"],
                "input_file_id": body["input_file_id"],
                "completion_window": body["completion_window"],
                "status": "validating",
                "created_at": int(time.time()),
                "output_file_id": None,
                "error_file_id": None,
                "metadata": body.get("metadata"),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "_polls": 0,
            }
            payload = self._batch_object(self.batches[batch_id])
        self._send(h, 200, payload)

    def _retrieve_batch(self, h: BaseHTTPRequestHandler, batch_id: str) -> None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                self._send(h, 404, {"error": {"message": "no such batch"}})
                return
            batch["_polls"] += 1
            if batch["status"] == "validating":
                batch["status"] = "in_progress"
            elif batch["status"] == "in_progress" and batch["_polls"] >= self.batch_polls_to_finish:
                self._finish(batch)
            payload = self._batch_object(batch)
        self._send(h, 200, payload)

    def _finish(self, batch: dict[str, Any]) -> None:
        out = []
        for text in self.files[batch["input_file_id"]].decode().splitlines():
            if not text.strip():
                continue
            line = json.loads(text)
            body = line["body"]
            if not self.structured:
                body = {k: v for k, v in body.items() if k != "response_format"}
            key = hashlib.sha256(json.dumps(line["body"]["messages"]).encode()).hexdigest()
            self.paid[key] += 1
            out.append(
                {
                    "id": f"req-{len(out)}",
                    "custom_id": line["custom_id"],
                    "response": {"status_code": 200, "body": self.completion(body)},
                    "error": None,
                }
            )
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = ("\n".join(json.dumps(o) for o in out) + "\n").encode()
        batch["status"] = "completed"
        batch["output_file_id"] = file_id
        batch["request_counts"]["completed"] = len(out)


def main() -> None:
    """Serve for manual trials: python -m tests.fake_openai [_ LATENCY]; prints the base URL."""
    import sys

    fake = FakeOpenAI(latency=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    fake.start()
    print(fake.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
