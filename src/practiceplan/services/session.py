"""The session of one command: settings, the clock read once, and the store opened on first use.

Every service takes a :class:`Session`; Python callers (scripts, tests, the sync code) open one and use the
services without the CLI::

    session = Session(Settings())
    plan, created = session.plans.add(PlanInput(title="Scales", every="daily"))
    session.close()

The services are imported only when first used, so a read command pays only for what it touches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from practiceplan import clock
from practiceplan.domain.models import iso_z
from practiceplan.settings import Settings
from practiceplan.store.repo import Store

if TYPE_CHECKING:
    from practiceplan.services.config import Config
    from practiceplan.services.data import Data
    from practiceplan.services.insights import Insights
    from practiceplan.services.logbook import Logbook
    from practiceplan.services.occurrences import Occurrences
    from practiceplan.services.plans import Plans
    from practiceplan.services.progress import Progress
    from practiceplan.services.remote import Remote
    from practiceplan.services.schedule import Schedule
    from practiceplan.services.sync import Sync
    from practiceplan.services.templates import Templates
    from practiceplan.services.today import Today


@dataclass
class Session:
    settings: Settings = field(default_factory=Settings)
    _now: datetime | None = None
    notices: list[str] = field(default_factory=list)  # what the services want said (the CLI prints them on stderr)

    @cached_property
    def zone(self) -> ZoneInfo:
        return self.settings.zone

    @property
    def now(self) -> datetime:
        """The clock for this invocation, read once (PRACTICEPLAN_NOW fixes it)."""
        if self._now is None:
            self._now = clock.now(self.zone)
        return self._now

    def at(self, moment: datetime) -> Session:
        """Act as if it were ``moment`` (demo data, tests)."""
        self._now = moment
        return self

    @cached_property
    def store(self) -> Store:
        store = Store.open(self.settings.db_path, create_folder=self.settings.creates_folder)
        store.on_logbook_change = self._logbook_changed
        return store

    @cached_property
    def me(self) -> str | None:
        """This account's user name on the sync server (from the last sync), or None: whose plans are shared
        with whom (docs/collaboration.md)."""
        from practiceplan.store.sharing import my_name

        return my_name(self.store.conn)

    def _logbook_changed(self) -> None:
        """A write changed the logbook: refresh the streak hint in the same transaction (reads never write it)."""
        from practiceplan.services.insights import Insights

        Insights(self).record_streak_hint()

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def add_event(self, name: str, data: dict[str, Any]) -> None:
        """Record a change in the local event log (inside the caller's ``store.write()``), stamped now and
        pruned to the configured retention (``events_keep``, ``events_days``) in the same transaction."""
        config = self.settings.config
        self.store.add_event(name, iso_z(self.now), data, keep=config["events_keep"], days=config["events_days"])

    def horizon_target(self) -> datetime:
        """How far ahead occurrences are materialised: now + ``horizon_days``."""
        return self.now + timedelta(days=self.settings.config["horizon_days"])

    # ------------------------------------------------------------------ the services (imported on first use)

    @cached_property
    def sync(self) -> Sync:
        from practiceplan.services.sync import Sync

        return Sync(self)

    @cached_property
    def plans(self) -> Plans:
        from practiceplan.services.plans import Plans

        return Plans(self)

    @cached_property
    def occurrences(self) -> Occurrences:
        from practiceplan.services.occurrences import Occurrences

        return Occurrences(self)

    @cached_property
    def logbook(self) -> Logbook:
        from practiceplan.services.logbook import Logbook

        return Logbook(self)

    @cached_property
    def today(self) -> Today:
        from practiceplan.services.today import Today

        return Today(self)

    @property
    def insights(self) -> Insights:
        """A fresh analytics view (it memoises what it loads for the current clock)."""
        from practiceplan.services.insights import Insights

        return Insights(self)

    @property
    def progress(self) -> Progress:
        """The progress review (tempo against targets, tension hotspots)."""
        from practiceplan.services.progress import Progress

        return Progress(self)

    @cached_property
    def schedule(self) -> Schedule:
        from practiceplan.services.schedule import Schedule

        return Schedule(self)

    @cached_property
    def templates(self) -> Templates:
        from practiceplan.services.templates import Templates

        return Templates(self)

    @cached_property
    def data(self) -> Data:
        from practiceplan.services.data import Data

        return Data(self)

    @cached_property
    def config(self) -> Config:
        from practiceplan.services.config import Config

        return Config(self)

    @cached_property
    def remote(self) -> Remote:
        from practiceplan.services.remote import Remote

        return Remote(self)
