"""The README is a front page (the two commands first, at most 250 lines) and every relative link
of the README, sdk/README.md and docs/ leads somewhere: to a file that exists, and to a heading in it.

Standard library only: no agentmon import, so it runs in a second."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "sdk" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^ *```.*?^ *```", flags=re.DOTALL | re.MULTILINE)


def prose(text: str) -> str:
    """The page without its fenced code blocks (a `# comment` in one is not a heading)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation other than - and _
    removed, every space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link's text only
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def slugs(page: Path) -> set[str]:
    """Every anchor of a page; a repeated heading gets -1, -2, … as on GitHub."""
    found, seen = set(), {}
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", prose(page.read_text()), flags=re.MULTILINE):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def test_slugs_as_github_makes_them():
    assert slug("PostgreSQL: one warehouse for a team") == "postgresql-one-warehouse-for-a-team"
    assert slug("Performance (`make bench`, 2 cores)") == "performance-make-bench-2-cores"
    assert slug("From your agent's code: the telemetry SDK") == "from-your-agents-code-the-telemetry-sdk"
    assert slug("Where the results are, and the Python API") == "where-the-results-are-and-the-python-api"
    assert slug("agentmon.yaml and agents.yaml") == "agentmonyaml-and-agentsyaml"


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines (at most 250: move text into docs/)"
    first = lines[:20]
    opens = [i for i, line in enumerate(first) if line.strip().startswith("```")]
    blocks = [first[a + 1 : b] for a, b in zip(opens[::2], opens[1::2])]
    commands = [[line.split("#")[0].strip() for line in block] for block in blocks]
    assert ["make demo", "make test"] in commands, (
        "the README's first 20 lines hold the block of make demo and make test"
    )


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)", prose(page.read_text())):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, …
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: {target}"
            if not file.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in slugs(file):
                broken.append(f"{where} (no heading #{anchor} in {file.relative_to(ROOT)})")
    assert not broken, "\n".join(broken)
