"""``latentspec-runtime serve BUNDLE...``: the argument parser and the command.

Building the parser imports nothing of the serve extra; running the command does.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from .._args import int_at_least

LOOPBACK = "127.0.0.1"
EXTRA_HINT = "serving needs the serve extra: pip install 'latentspec-runtime[serve]'"


def add_serve_parser(sub: Any, devices: tuple[str, ...]) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``sub`` (the runtime CLI's subparsers)."""
    about = "serve bundles over HTTP: one endpoint per entry point, metrics, and the latent explorer at /"
    p = sub.add_parser("serve", help=about, description=about)
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle folders written by `latentspec export`")
    p.add_argument(
        "--host",
        "--bind",
        dest="host",
        default=LOOPBACK,
        help=f"address to listen on (default {LOOPBACK}: this machine only)",
    )
    p.add_argument("--port", type=int_at_least(0), default=8000, help="TCP port (default 8000; 0 picks a free one)")
    p.add_argument("--token-file", type=Path, help="a file holding a bearer token that every endpoint but health needs")
    p.add_argument(
        "--max-batch",
        type=int_at_least(1),
        default=64,
        help="most rows merged into one run (default 64; 1: no batching)",
    )
    p.add_argument(
        "--max-wait-ms", type=float, default=2.0, help="longest a batch waits for more requests, ms (default 2)"
    )
    p.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body, MiB (default 16)")
    p.add_argument("--max-items", type=int_at_least(1), default=1024, help="most rows in one request (default 1024)")
    p.add_argument("--device", choices=devices, default="auto", help="default: auto")
    p.add_argument("--threads", type=int_at_least(1), help="onnxruntime intra-op threads")
    p.add_argument(
        "--graceful-timeout", type=float, default=30.0, help="seconds requests in flight get to finish on shutdown"
    )
    p.add_argument(
        "--allow-nonfinite", action="store_true", help="run inputs holding NaN or infinity (refused by default)"
    )
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.set_defaults(func=None, serve=serve_command)
    return p


def serve_command(args: argparse.Namespace) -> int:
    """Load the bundles, bind the socket, and serve until SIGINT/SIGTERM (requests in flight finish)."""
    from ..cli import UsageError

    try:
        import uvicorn

        from ._app import ServeConfig, create_app
    except ImportError as err:
        raise ImportError(f"{EXTRA_HINT} ({err})") from None
    from .._bundle import Bundle

    if args.max_wait_ms < 0 or args.max_body_mb <= 0 or args.graceful_timeout < 0:
        raise UsageError("--max-wait-ms and --graceful-timeout must be >= 0, --max-body-mb > 0")
    token = None
    if args.token_file is not None:
        token = args.token_file.read_text(encoding="utf-8").strip()
        if not token or any(c.isspace() for c in token):
            raise UsageError(f"--token-file {args.token_file}: the file must hold one token (no spaces)")
    bundles = [
        Bundle.load(path, device=args.device, threads=args.threads, finite=not args.allow_nonfinite)
        for path in args.bundles
    ]
    config = ServeConfig(
        max_batch=args.max_batch,
        max_wait=args.max_wait_ms / 1000.0,
        max_body=int(args.max_body_mb * (1 << 20)),
        max_items=args.max_items,
        token=token,
    )
    try:
        app = create_app(bundles, config)
    except ValueError as err:
        raise UsageError(str(err)) from None
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    names = ", ".join(b.name for b in bundles)
    print(f"latentspec-runtime: serving {names} on http://{shown}:{port}/ (explorer at /, API at /docs)", flush=True)
    if not _is_loopback(host) and token is None:
        print("latentspec-runtime: warning: listening beyond this machine without --token-file", file=sys.stderr)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=args.log_level,
            access_log=args.access_log,
            timeout_graceful_shutdown=args.graceful_timeout,
        )
    )
    # uvicorn finishes the requests in flight, then re-raises the signal that stopped it: a
    # handler of ours turns that into a clean exit (status 0) instead of death by signal.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


class _Stopped(Exception):
    """The server was asked to stop (SIGINT or SIGTERM) and has stopped."""


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise OSError(f"--host {host}: cannot resolve it ({err.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
