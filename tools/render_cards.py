"""Render the cards the demo posts to PNG, the way Webex clients draw them (developer tool).

Needs Debian's `chromium` and Microsoft's `adaptivecards` renderer from npm:
    apt-get install chromium && (cd /tmp/render && npm install adaptivecards@3 markdown-it@14)
    .venv/bin/python tools/render_cards.py --renderer /tmp/render/node_modules/adaptivecards/dist/adaptivecards.js
PNG files land in render-out/ (git-ignored), one per card, in the order the demo posted them.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<style>body{{margin:0;padding:16px;background:#fff;font-family:'DejaVu Sans',Arial,sans-serif;width:520px}}
.ac-pushButton{{border:1px solid #0a7a8c;border-radius:16px;padding:4px 12px;margin:2px;background:#fff;color:#0a7a8c}}</style>
<script>{markdown}</script><script>{renderer}</script></head><body><div id="card"></div><script>
// Webex clients render the markdown subset of TextBlocks; markdown-it stands in for their processor.
const md = window.markdownit ? window.markdownit() : null;
if (md) {{ AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {{
  result.outputHtml = md.render(text); result.didProcess = true; }}; }}
const card = new AdaptiveCards.AdaptiveCard();
card.hostConfig = new AdaptiveCards.HostConfig({{fontFamily: "DejaVu Sans, Arial, sans-serif",
  containerStyles: {{default: {{backgroundColor: "#FFFFFF"}}, emphasis: {{backgroundColor: "#F2F2F2"}},
  good: {{backgroundColor: "#E6F4EA"}}, attention: {{backgroundColor: "#FDECEA"}}, warning: {{backgroundColor: "#FFF4E0"}}}}}});
card.parse({card});
document.getElementById("card").appendChild(card.render());
</script></body></html>"""


def demo_cards() -> list[dict]:
    from fakes import demo
    with tempfile.TemporaryDirectory() as folder:
        world = demo.DemoWorld(str(Path(folder) / "r.sqlite3"), out=io.StringIO()).start()
        try:
            for scene in demo.SCENES:
                scene(world)
            return [m["attachments"][0]["content"] for m in world.webex.sent_by_bot(world.room) if m.get("attachments")]
        finally:
            world.stop()


def render(cards: list[dict], renderer: Path, out: Path) -> list[Path]:
    out.mkdir(exist_ok=True)
    script = renderer.read_text()
    markdown_it = renderer.parents[2] / "markdown-it" / "dist" / "markdown-it.min.js"
    markdown = markdown_it.read_text() if markdown_it.is_file() else ""
    written = []
    for number, card in enumerate(cards, start=1):
        page = out / f"card-{number:02d}.html"
        page.write_text(PAGE.format(renderer=script, markdown=markdown, card=json.dumps(card)))
        png = out / f"card-{number:02d}.png"
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tempfile.mkdtemp()}", "--hide-scrollbars", "--window-size=552,1400",
                        f"--screenshot={png}", page.as_uri()], check=True, capture_output=True, timeout=60)
        written.append(png)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renderer", type=Path, required=True, help="path to adaptivecards.js")
    parser.add_argument("--out", type=Path, default=ROOT / "render-out")
    args = parser.parse_args()
    for png in render(demo_cards(), args.renderer, args.out):
        print(png)


if __name__ == "__main__":
    main()
