"""The built Evidence site in headless Chromium (Debian's package), served on loopback, with no
network: every page renders with data (tables with rows, charts drawn), shows no error panel and
no query left loading, and shows the demo's findings. A screenshot of each page is saved in
reports/screenshots/. Run by `make test-reports` (demo data, `make reports`, then this)."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentmon_pipeline.config import project_dir

REPORTS = project_dir() / "reports"
BUILD = REPORTS / "build"
SHOTS = REPORTS / "screenshots"
PAGES = ["index", "telemetry", "agents", "performance", "evaluation", "alerts"]
# what each page must show on the demo data (issue 8: agents, the latency regression, the cost
# spike, the eval verdicts, the alerts)
MUST_SHOW = {
    "index": ["support-bot", "regressed", "benchmark", "alert"],
    "telemetry": ["support-bot", "research-agent", "Runs per day", "Errors by type"],
    "agents": ["support-platform@example.com", "regressed", "p95_duration_ms", "unregistered", "deployment"],
    "performance": ["gpt-4o", "research-agent", "total_tokens"],
    "evaluation": ["support-qa", "regressed", "normalized_match"],
    "alerts": ["firing", "warning"],
}
MAY_BE_EMPTY = {"deliveries", "resolved"}  # the demo's rules have no channels, and nothing resolved yet
CHART = re.compile(r"<(LineChart|BarChart|AreaChart|ScatterPlot)\s+data=\{(\w+)\}")
TABLE = re.compile(r"<DataTable\s+data=\{(\w+)\}")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed: make test-reports installs Debian's chromium")
    return path


@pytest.fixture(scope="module")
def site():
    if not (BUILD / "index.html").exists():
        pytest.fail(f"no built site in {BUILD}: run make reports (make test-reports does it all)")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(BUILD)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def render(url: str, profile, *extra: str) -> str:
    out = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", "--window-size=1400,4200",
         "--virtual-time-budget=30000", *extra, url],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_data(site, page, tmp_path):
    url = f"{site}/{'' if page == 'index' else page}"
    SHOTS.mkdir(exist_ok=True)
    render(url, tmp_path / "shot", f"--screenshot={SHOTS / f'{page}.png'}")
    assert (SHOTS / f"{page}.png").stat().st_size > 10_000
    dom = render(url, tmp_path / "dom", "--dump-dom")
    source = (REPORTS / "pages" / f"{page}.md").read_text()

    assert "bg-red-50" not in dom, f"{page}: an error panel: {_error_text(dom)}"
    assert "animate-pulse" not in dom, f"{page}: a component still loading (a query that failed or hung)"
    # Evidence names a table's test id after its query only sometimes ("DataTable-no-id"), so
    # count them: every table is drawn with rows, except those allowed to be empty on the demo
    names = TABLE.findall(source)
    allowed_empty = sum(1 for name in names if name in MAY_BE_EMPTY)
    tables = re.findall(r'data-testid="DataTable-[^"]*".*?</table>', dom, re.DOTALL)
    assert len(tables) >= len(names) - allowed_empty, (
        f"{page}: {len(tables)} tables drawn, {len(names)} in the page"
    )
    for table in tables:
        assert len(re.findall(r"<tr", table)) >= 2, f"{page}: a table without rows"
    charts = [name for _, name in CHART.findall(source) if name not in MAY_BE_EMPTY]
    canvases = dom.count("<canvas data-zr-dom-id")
    assert canvases >= len(charts), f"{page}: {canvases} charts drawn, {len(charts)} expected"
    text = re.sub(r"<[^>]+>", " ", dom)
    missing = [word for word in MUST_SHOW[page] if word not in text]
    assert not missing, f"{page}: does not show {missing}"


def _error_text(dom: str) -> str:
    match = re.search(r"bg-red-50.*?</div>\s*</div>", dom, re.DOTALL)
    return re.sub(r"<[^>]+>", " ", match.group(0))[:500] if match else ""
