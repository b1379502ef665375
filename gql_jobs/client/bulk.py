"""What a bulk action did over all the calls it took: the server acts on at most its bulk limit per
call and says `truncated` (with a `cursor` past the jobs it skipped); the client calls again until
it is not, and sums the answers here."""

from __future__ import annotations

from dataclasses import dataclass, field

from gql_jobs.client._generated.fragments import BulkFields, BulkFieldsSkipped

BulkSkip = BulkFieldsSkipped


@dataclass
class BulkOutcome:
    """The sum of a bulk action's calls. `truncated` (with `cursor`) is true only when the caller
    asked for one call (`all_pages=False`) and more jobs may match."""

    matched: int = 0
    acted: int = 0
    acted_ids: list[str] = field(default_factory=list)
    skipped: list[BulkSkip] = field(default_factory=list)
    truncated: bool = False
    cursor: str | None = None
    calls: int = 0

    def add(self, page: BulkFields) -> None:
        """Count one call's answer in. A job skipped by several calls (a truncated answer without a
        cursor is asked again from the start) is listed once."""
        self.calls += 1
        self.matched += page.matched
        self.acted += page.acted
        self.acted_ids.extend(page.acted_ids)
        known = {skip.id for skip in self.skipped}
        fresh = [skip for skip in page.skipped if skip.id not in known]
        self.matched -= len(page.skipped) - len(fresh)
        self.skipped.extend(fresh)
        self.truncated, self.cursor = page.truncated, page.cursor
