"""Screenshots for the README: the leaders' dashboard and a leader's App Home, from seeded data.

    .venv/bin/python tools/screenshots.py            # writes docs/dashboard.png and docs/app-home.png

Seeds eight weeks of requests in a throwaway SQLite database through the real use cases (submit, claim,
needs info, unclaim, decline, breach reasons), serves the real app with uvicorn, signs a leader in with a
session cookie, and photographs /dashboard in headless Chromium. The App Home is the exact view
`views.publish` would receive, drawn as an HTML approximation of Slack's rendering (Slack itself cannot
be photographed offline).
"""

from __future__ import annotations

import html
import random
import re
import secrets
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import AE, CONFIG_TOML, LEADER, SA1, SA2, SA3, make_settings  # noqa: E402
from tests.leaders.browser import CHROMIUM, CHROMIUM_ARGS, serve  # noqa: E402
from tests.leaders.seed import submit  # noqa: E402
from triage.db import make_engine  # noqa: E402
from triage.migrate import upgrade  # noqa: E402
from triage.services import Services  # noqa: E402
from triage.slack.home import build_home  # noqa: E402
from triage.web import create_app  # noqa: E402
from triage.web.auth import SESSION_COOKIE, Auth  # noqa: E402

CUSTOMERS = ["Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises",
             "Wonka", "Cyberdyne", "Soylent", "Tyrell", "Massive Dynamic", "Aperture", "Vandelay", "Pied Piper"]
AES = [AE, "U0AE00002", "U0AE00003", "U0AE00004"]


def seed(services: Services, now: datetime) -> None:
    rnd = random.Random(10)
    n = 0
    for day in range(56, -1, -1):
        for _ in range(rnd.choice((1, 2, 2, 3))):
            n += 1
            when = now - timedelta(days=day, hours=rnd.randint(0, 20), minutes=rnd.randint(0, 59))
            queue = rnd.choice(("amer-east", "amer-east", "emea"))
            rtype = rnd.choice(("opportunity", "opportunity", "follow_up", "security_assessment"))
            requester = rnd.choice(AES)
            rid = submit(services, when, f"s{n}", requester=requester, queue=queue, request_type=rtype,
                         customer_name=rnd.choice(CUSTOMERS), expedite=["expedite"] if rnd.random() < 0.1 else [])
            sas = (SA1, SA2) if queue == "amer-east" else (SA2, SA3)
            fate = rnd.random()
            delay = timedelta(hours=rnd.choice((2, 5, 9, 14, 20, 30, 40)))
            if when + delay > now or fate < 0.06:
                continue  # still waiting
            if fate < 0.12:
                services.decline(rid, sas[0], "Not an SA topic: licensing.", now=when + timedelta(hours=1))
                continue
            if fate < 0.25:
                services.needs_info(rid, sas[0], "Which cloud are they on?", now=when + timedelta(hours=1))
                if when + timedelta(hours=6) < now:
                    services.answer(rid, requester, "AWS today.", now=when + timedelta(hours=6))
                else:
                    continue
            if fate > 0.95 and when + delay + timedelta(hours=1) < now:
                services.claim(rid, sas[0], now=when + delay / 2)
                services.unclaim(rid, sas[0], now=when + delay / 2 + timedelta(minutes=30))
            owner = sas[1] if rnd.random() < 0.45 else sas[0]
            services.claim(rid, owner, now=when + delay)
            request = services.get(rid)
            if request.allocated_within_sla is False:
                reason = rnd.choice(("capacity", "capacity", "late_triage", "no_context"))
                services.record_breach_reason(rid, LEADER, reason, None, now=when + delay + timedelta(minutes=5))
            if rnd.random() < 0.4 and when + delay + timedelta(days=2) < now:
                services.set_status(rid, owner, "done", now=when + delay + timedelta(days=2))


def posted(engine) -> None:
    """What the worker would have stored once Slack and GitLab took each request: card ts and issue URL."""
    import sqlalchemy as sa

    from triage.models import Request

    with engine.begin() as c:
        for rid, created, project in c.execute(sa.select(Request.id, Request.created_at, Request.gitlab_project)):
            c.execute(sa.update(Request).where(Request.id == rid).values(
                slack_ts=f"{int(created.replace(tzinfo=UTC).timestamp())}.000100", gitlab_iid=rid,
                gitlab_url=f"https://gitlab.example.com/{project}/-/issues/{rid}"))


def mrkdwn_html(text: str) -> str:
    """Enough of Slack's mrkdwn for a picture: links, mentions, bold, italics, a few emoji, line breaks."""
    out = html.escape(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"), quote=False)
    out = re.sub(r"&lt;(https?://[^|&]+)\|([^&]+?)&gt;", r'<a href="\1">\2</a>', out)
    out = re.sub(r"&lt;@([UW][A-Z0-9]+)&gt;", lambda m: f'<span class="mention">@{NAMES.get(m[1], m[1])}</span>', out)
    out = re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", out)
    out = re.sub(r"(?<![\w/])_([^_\n]+)_(?!\w)", r"<i>\1</i>", out)
    for code, color in ((":red_circle:", "#e01e5a"), (":large_orange_circle:", "#ecb22e")):
        out = out.replace(code, f'<span class="dot" style="background:{color}"></span>')
    return out.replace("\n", "<br>")


NAMES = {SA1: "Sam Architect", SA2: "Sasha Two", SA3: "Sid Three", LEADER: "Lee Leader"}


HOME_PAGE = """<!doctype html><meta charset=utf-8><style>
body { font: 15px/1.45 -apple-system, 'Segoe UI', sans-serif; margin: 0; background: #fff; color: #1d1c1d }
.bar { background: #3f0e40; color: #fff; padding: 10px 20px; font-weight: 700 }
.tabs { border-bottom: 1px solid #ddd; padding: 8px 20px; color: #616061 }
.tabs b { color: #1d1c1d; border-bottom: 2px solid #1264a3; padding-bottom: 6px }
main { padding: 8px 24px; max-width: 860px } h2 { font-size: 18px; margin: 18px 0 6px } p { margin: 6px 0 }
.ctx { color: #616061; font-size: 13px } a { color: #1264a3; text-decoration: none }
.dot { display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 4px }
.mention { background: #e8f5fa; color: #1264a3; border-radius: 3px; padding: 0 2px }
hr { border: 0; border-top: 1px solid #ddd; margin: 14px 0 }
</style><div class=bar>SA Triage</div><div class=tabs><b>Home</b> &nbsp; Messages &nbsp; About</div>
<main>{body}</main>"""


def home_html(view: dict) -> str:
    parts = []
    for b in view["blocks"]:
        if b["type"] == "header":
            parts.append(f"<h2>{html.escape(b['text']['text'])}</h2>")
        elif b["type"] == "section":
            parts.append(f"<p>{mrkdwn_html(b['text']['text'])}</p>")
        elif b["type"] == "context":
            parts.append('<p class="ctx">' + " ".join(mrkdwn_html(e["text"]) for e in b["elements"]) + "</p>")
        elif b["type"] == "divider":
            parts.append("<hr>")
    return HOME_PAGE.replace("{body}", "".join(parts))


def main() -> None:
    from playwright.sync_api import sync_playwright

    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "triage.toml"
        config.write_text(CONFIG_TOML.replace('clock = "calendar"', 'clock = "weekdays"'))
        url = f"sqlite:///{tmp}/shots.db"
        settings = make_settings(DATABASE_URL=url, TRIAGE_CONFIG=str(config), TRIAGE_EMBEDDED_WORKER=False,
                                 TRIAGE_SESSION_SECRET=secrets.token_urlsafe(16), SLACK_CLIENT_ID="1.2",
                                 SLACK_CLIENT_SECRET=secrets.token_urlsafe(16))
        upgrade(url)
        engine = make_engine(url)
        services = Services(settings, engine)
        seed(services, now)
        posted(engine)
        view = build_home(services, LEADER, [], now)
        cookie = Auth(settings).session_value(user=LEADER, name="Lee Leader", team="T0001")
        app = create_app(settings, migrate=False, worker=False)
        with serve(app) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1320, "height": 900}, device_scale_factor=1)
            context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": base}])
            page = context.new_page()
            page.goto(f"{base}/dashboard?period=30d")
            page.screenshot(path=str(docs / "dashboard.png"), full_page=False,
                            clip={"x": 0, "y": 0, "width": 1320, "height": 1500})
            page = context.new_page()  # a blank page: the dashboard's CSP would refuse inline styles
            page.set_viewport_size({"width": 900, "height": 900})
            page.set_content(home_html(view))
            page.screenshot(path=str(docs / "app-home.png"), full_page=True)
            browser.close()
        engine.dispose()
    print("wrote docs/dashboard.png and docs/app-home.png")


if __name__ == "__main__":
    main()
