"""What is wrong with a bars file: each problem names its row, its column and the rule."""

from dataclasses import asdict, dataclass

# How many problems a refusal lists.
MAX_PROBLEMS = 5


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (data row and column, both 1-based, when known) and why."""

    rule: str
    row: int | None = None
    column: str | None = None  # the column's canonical name: ts, open, ...
    position: int | None = None  # the column's place in the file, from 1
    value: str | None = None  # as a person reads it: text quoted, numbers bare

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            place = f" (file column {self.position})" if self.position else ""
            where.append(f"column {self.column}{place}")
        if self.value is not None:
            where.append(f"value {self.value}")
        return f"{', '.join(where)}: {self.rule}" if where else self.rule

    def as_dict(self) -> dict:
        """The problem as the API's error details list it."""
        return {**asdict(self), "message": str(self)}


class BarsError(ValueError):
    """A bars file that cannot be used, with the first problems found."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        self.message = message
        self.problems = problems or []
        lines = [message, *(f"  {problem}" for problem in self.problems)]
        super().__init__("\n".join(lines))
