"""Services files for the driver's file mode (SPEC §4 step 10).

One CP id per line; blank lines and ``#`` comments (whole-line or after the id)
are ignored. Ids must look like CP ids (the ``charging_points.cp_id`` CHECK in
``sql/001_core.sql``); whether the CP exists is CENTRAL's call (CP_NOT_FOUND).
Pure text in, list out: reading the file is the caller's job.
"""
from __future__ import annotations

from common import domain

CP_ID_PATTERN = domain.CP_ID_PATTERN
COMMENT = "#"


class ServicesFileError(ValueError):
    """A services file that cannot be used; ``problems`` lists (line number, text)."""

    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        super().__init__("; ".join(f"line {n}: {text}" for n, text in problems))


def is_cp_id(text: str) -> bool:
    """True when text is a syntactically valid CP id."""
    return bool(CP_ID_PATTERN.match(text))


def parse_services(text: str) -> list[str]:
    """CP ids in file order (repeats kept); raises ServicesFileError listing every bad line."""
    ids: list[str] = []
    problems: list[tuple[int, str]] = []
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.split(COMMENT, 1)[0].strip()
        if not line:
            continue
        if is_cp_id(line):
            ids.append(line)
        else:
            problems.append((number, f"invalid CP id {line[:40]!r}"))
    if problems:
        raise ServicesFileError(problems)
    if not ids:
        raise ServicesFileError([(0, "no CP ids in the file")])
    return ids
