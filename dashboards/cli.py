"""`tollgate dashboard`: serve the Streamlit app on run folders, the monitor store and drift results.

Runs `streamlit run dashboards/app.py` as a child process, headless, without usage telemetry,
bound to 127.0.0.1 unless told otherwise. The app only reads the data folder.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from dashboards.settings import ALERTMANAGER_ENV, DATA_ENV, PROMETHEUS_ENV, WINDOW_ENV

APP = Path(__file__).with_name("app.py")
PORTS = {"prometheus": 9090, "alertmanager": 9093}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tollgate dashboard", description="Open the Tollgate Streamlit dashboard."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it)"
    )
    parser.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("reports"),
        help="folder with runs/, sweeps/, drift/ and monitor.db (default reports)",
    )
    parser.add_argument(
        "--prometheus",
        metavar="URL",
        default=None,
        help="read Live, Overview targets and alerts from this Prometheus (e.g. http://127.0.0.1:9090)",
    )
    parser.add_argument(
        "--alertmanager",
        metavar="URL",
        default=None,
        help="read alerts and silences from this Alertmanager's v2 API (e.g. http://127.0.0.1:9093)",
    )
    parser.add_argument(
        "--window",
        default="1m",
        help="rate window of the --prometheus queries, as `tollgate monitor --window` (default 1m)",
    )
    args = parser.parse_args(argv)
    for flag in ("prometheus", "alertmanager"):
        url = getattr(args, flag)
        if url is not None and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url):
            parser.error(f"--{flag} {url}: give the base URL, e.g. http://127.0.0.1:{PORTS[flag]}")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)", args.window)
    if not m or float(m.group(1)) <= 0:
        parser.error(f"--window {args.window}: write a duration such as 30s, 1m or 5m")
    args.window_s = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port}: choose a port between 1 and 65535")
    if args.data.exists() and not args.data.is_dir():
        parser.error(
            f"--data {args.data}: is a file; give the folder that holds runs/, drift/ and monitor.db"
        )
    return args


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
        "--theme.base", "light",
    ]  # fmt: skip


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    data = args.data.resolve()
    if not data.exists():
        print(
            f"tollgate dashboard: {data} does not exist yet; pages will say which command fills it.",
            file=sys.stderr,
        )
    env = os.environ | {DATA_ENV: str(data), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    env[WINDOW_ENV] = str(args.window_s)
    sources = [str(data)]
    for name, key, url in (
        ("Prometheus", PROMETHEUS_ENV, args.prometheus),
        ("Alertmanager", ALERTMANAGER_ENV, args.alertmanager),
    ):
        if url:
            env[key] = url.rstrip("/")
            sources.append(f"{name} {url}")
    print(f"tollgate dashboard: http://{args.host}:{args.port} reading {', '.join(sources)}", flush=True)
    proc = subprocess.Popen(streamlit_command(args.host, args.port), env=env)

    def stop(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
