"""Screenshots of a search's TensorBoard, for the guide and the README (not a test).

Runs a short quickstart search (or takes a finished run), serves its `tensorboard/` on
127.0.0.1 and photographs the dashboards with Debian's `chromium` (headless) into
`docs/tensorboard/`: `time_series.png`, `custom_scalars.png`, `scalars.png`, `hparams.png`,
`histograms.png`.

    apt-get install -y chromium
    python3 docs/tensorboard_screenshots.py [--run_dir=runs/quickstart] [--out=docs/tensorboard]
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Dashboard -> the URL fragment that opens it (results unsmoothed, the legacy dashboards).
PAGES = {
    "time_series": "#timeseries",
    "custom_scalars": "#custom_scalars&_smoothingWeight=0",
    "scalars": "#scalars&_smoothingWeight=0&tagFilter=Results",
    "hparams": "#hparams",
    "histograms": "#histograms&tagFilter=beta_s",
}


def short_search(run_dir):
    """The quickstart on 5,000 images, 3 rounds of 3 epochs: every tag of a real search."""
    subprocess.run([sys.executable, "-m", "apps.search", "--flagfile=apps/flags/quickstart.cfg",
                    f"--output_dir={run_dir}", "--train_examples=5000", "--epochs=3",
                    "--ticket_epochs=3", "--nodeployment", "--verbose=0", "--overwrite"],
                   cwd=ROOT, check=True)


def serve(log_dir):
    """`(process, port)` of a TensorBoard serving `log_dir` on 127.0.0.1, once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", log_dir,
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2)
            return server, port
        except OSError:
            time.sleep(1)
    server.terminate()
    raise RuntimeError("TensorBoard did not start")


def screenshot(url, path, width=1600, height=1100):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("error: needs Debian's chromium (apt-get install -y chromium).")
    subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--window-size={width},{height}",
                    "--virtual-time-budget=20000", f"--screenshot={path}", url],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run_dir", default=None, help="a finished run (default: run one)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "tensorboard"))
    args = parser.parse_args()
    run_dir = args.run_dir or os.path.join(ROOT, "runs", "tensorboard_screenshots")
    if args.run_dir is None:
        short_search(run_dir)
    os.makedirs(args.out, exist_ok=True)
    server, port = serve(os.path.join(run_dir, "tensorboard"))
    try:
        for name, fragment in PAGES.items():
            path = os.path.join(args.out, f"{name}.png")
            screenshot(f"http://127.0.0.1:{port}/{fragment}", path)
            print(path)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
