"""A crawler agent driven by states, on convergent.relational.

    python examples/relational_agent.py

It crawls a small simulated site (no network needed: pages, links and latency
live in ``SITE``), a few pages at a time. The states say what the agent is
doing; handlers react to them; the relations keep the states consistent:

* ``Start`` adds ``Fetching``; ``Fetching`` and ``Idle`` exclude each other;
* ``Idle`` is an auto state: once nothing is in flight (``Fetching`` removed) it
  activates by itself, and ``Done`` follows it when the frontier is empty;
* ``PageFetched`` is a multi state: one activation per page, with the page in
  its args; its negotiation handler refuses pages already seen;
* a failed fetch becomes ``ErrNetwork`` (which requires ``Exception``): errors
  are states too, and the crawl goes on.

State names are ``StateNames`` constants (``S.Fetching``), so a misspelt
state fails at type-check time. Before running, the schema is checked
statically (``analyze``).
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any

from convergent.relational import (
    EXCEPTION,
    Event,
    HistoryTracer,
    Machine,
    Schema,
    State,
    StateNames,
    analyze,
)

class S(StateNames):
    """The state names as constants: a typo is a type-check error."""

    Start = enum.auto()
    Fetching = enum.auto()
    PageFetched = enum.auto()
    Idle = enum.auto()
    Done = enum.auto()
    ErrNetwork = enum.auto()


CRAWLER = Schema.from_dict({
    S.Start: State(add=(S.Fetching,)),
    S.Fetching: State(require=(S.Start,), remove=(S.Idle,)),
    S.PageFetched: State(multi=True, require=(S.Start,)),
    S.Idle: State(auto=True, require=(S.Start,), remove=(S.Fetching,)),
    S.Done: State(auto=True, require=(S.Idle,)),
    S.ErrNetwork: State(multi=True, require=(EXCEPTION,)),
}, name="crawler", names=S)

# url -> (links on the page, seconds to fetch it); "/broken" fails
SITE: dict[str, tuple[list[str], float]] = {
    "/": (["/docs", "/blog", "/about"], 0.01),
    "/docs": (["/docs/start", "/docs/api", "/"], 0.02),
    "/docs/start": (["/docs/api"], 0.01),
    "/docs/api": (["/docs", "/broken"], 0.03),
    "/blog": (["/blog/1", "/blog/2"], 0.01),
    "/blog/1": (["/blog/2", "/"], 0.02),
    "/blog/2": (["/blog/1"], 0.01),
    "/about": ([], 0.01),
}


async def fetch(url: str) -> list[str]:
    """Stand-in for an HTTP GET returning the links of a page."""
    if url not in SITE:
        await asyncio.sleep(0.005)
        raise ConnectionError(f"GET {url}: 404")
    links, delay = SITE[url]
    await asyncio.sleep(delay)
    return links


class Crawler:
    """The agent: its handlers are bound by name when the machine is built."""

    def __init__(self, root: str, concurrency: int = 3) -> None:
        self.root = root
        self.concurrency = concurrency
        self.seen: set[str] = set()
        self.frontier: list[str] = []
        self.in_flight = 0
        self.pages: dict[str, list[str]] = {}
        self.history = HistoryTracer()
        self.mach = Machine(CRAWLER, handlers=self, tracers=[self.history], id="crawler")

    # final handler: Start activated (and, through the add relation, Fetching)
    def Start_state(self, e: Event) -> None:
        self.frontier = [self.root]
        self.seen = {self.root}

    def Fetching_state(self, e: Event) -> None:
        self._spawn()

    def _spawn(self) -> None:
        while self.frontier and self.in_flight < self.concurrency:
            url = self.frontier.pop(0)
            self.in_flight += 1
            # the task lives while Start keeps its tick: removing Start cancels it
            self.mach.fork(self._get(url), state=S.Start)

    async def _get(self, url: str) -> None:
        try:
            links = await fetch(url)
        except ConnectionError as err:
            self.in_flight -= 1
            self.mach.add_err_nowait(err, S.ErrNetwork, args={"url": url})
            self._settle()
            return
        self.in_flight -= 1
        await self.mach.add(S.PageFetched, args={"url": url, "links": links})

    # negotiation: a page already recorded is refused (the transition is cancelled)
    def PageFetched_enter(self, e: Event) -> bool:
        return e.args["url"] not in self.pages

    def PageFetched_state(self, e: Event) -> None:
        url, links = e.args["url"], e.args["links"]
        self.pages[url] = links
        for link in links:
            if link not in self.seen:
                self.seen.add(link)
                self.frontier.append(link)
        self._settle()

    def ErrNetwork_state(self, e: Event) -> None:
        print(f"  error state: {e.args['err']} (crawl goes on)")

    def _settle(self) -> None:
        self._spawn()
        if not self.frontier and not self.in_flight:
            # nothing left: Fetching ends, the auto states Idle then Done follow
            self.mach.remove_nowait(S.Fetching)

    # negotiation: Done only once the frontier is really empty
    def Done_enter(self, e: Event) -> bool:
        return not self.frontier and not self.in_flight

    async def run(self) -> dict[str, list[str]]:
        async with self.mach:
            await self.mach.add(S.Start)
            await asyncio.wait_for(self.mach.when(S.Done), timeout=5)
            print(f"  final: {self.mach.string_all()}")
        return self.pages


def main() -> None:
    print(analyze(CRAWLER).render_text())
    crawler = Crawler("/")
    pages = asyncio.run(crawler.run())
    print(f"crawled {len(pages)} pages: {', '.join(sorted(pages))}")
    refused = [r for r in crawler.history if not r.accepted and "PageFetched" in r.called]
    autos = [r for r in crawler.history if r.is_auto and r.accepted]
    print(f"{len(crawler.history)} transitions, {len(refused)} refused, "
          f"{len(autos)} auto: {', '.join(' '.join(r.activated) for r in autos)}")


def run_for_tests() -> dict[str, Any]:
    """Entry point for the test suite: the crawl's outcome as data."""
    crawler = Crawler("/")
    pages = asyncio.run(crawler.run())
    return {"pages": sorted(pages), "string_all": crawler.mach.string_all(),
            "errors": crawler.mach.tick(S.ErrNetwork)}


if __name__ == "__main__":
    main()
