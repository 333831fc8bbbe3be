"""How well `statsapi extract` does, measured: `python -m app.extract_eval`.

Two measures, both learning from the 2023 seed bundle (offline, no database):

- the 2023 review itself against the seed's 57 observations (the extractor learns from those
  same quotes, so this checks reading, regions, quotes and the decisions, not generalisation);
- tests/fixtures/next-year-review.txt, an invented 2024 text (reworded, reordered, figures
  dropped and added), against its answer key tests/fixtures/next-year-answers.yaml.

right: same indicator, region, value and qualifier as the key. wrong: the key has that
indicator and region with another value or qualifier, or a quote that does not state the value.
extra: an indicator and region the key does not have (for the fixture, also a wrong value: its
key lists every figure an indicator measures).
"""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from app.bundle import DecimalSafeLoader, read_bundle_file
from app.config import PROJECT_ROOT
from app.extract import Extraction, Knowledge, Options, extract, knowledge_from_file
from app.figures import read_figures

SEED = PROJECT_ROOT / "seed" / "changzhou-2023-review.yaml"
SEED_TEXT = PROJECT_ROOT / "seed" / "sources" / "changzhou-veterans-affairs-2023-review.txt"
FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
NEXT_YEAR_TEXT = FIXTURES / "next-year-review.txt"
NEXT_YEAR_ANSWERS = FIXTURES / "next-year-answers.yaml"

Key = dict[tuple[str, str], tuple[Decimal, str]]  # (indicator, region) -> (value, qualifier)


@dataclass(frozen=True)
class Score:
    expected: int
    right: int
    wrong: list[str]
    extra: list[str]
    missed: list[str]

    def __str__(self) -> str:
        lines = [
            f"right {self.right}/{self.expected}, wrong {len(self.wrong)}, "
            f"extra {len(self.extra)}, missed {len(self.missed)}"
        ]
        lines += [f"  wrong: {item}" for item in self.wrong]
        lines += [f"  extra: {item}" for item in self.extra]
        lines += [f"  missed: {item}" for item in self.missed]
        return "\n".join(lines)


def score(draft: dict[str, Any], key: Key) -> Score:
    """The draft's observations against the answer key."""
    right, wrong, extra, found = 0, [], [], set()
    for observation in draft["observations"]:
        where = (observation["indicator"], observation["region"])
        said = (Decimal(observation["value"]), observation["qualifier"])
        found.add(where)
        stated = any(
            (f.value, f.qualifier.value) == said for f in read_figures(observation["quote"])
        )
        label = f"{where[0]} {where[1]} {said[0]} {said[1]}: {observation['quote']}"
        if where not in key:
            extra.append(label)
        elif key[where] != said or not stated:
            wrong.append(f"{label} (key: {key[where][0]} {key[where][1]})")
        else:
            right += 1
    missed = [f"{i} {r} {v} {q}" for (i, r), (v, q) in key.items() if (i, r) not in found]
    return Score(len(key), right, wrong, extra, missed)


def seed_key() -> Key:
    bundle = read_bundle_file(SEED).bundle
    return {(o.indicator, o.region): (o.value, o.qualifier.value) for o in bundle.observations}


def fixture_key() -> Key:
    document = yaml.load(NEXT_YEAR_ANSWERS.read_text(encoding="utf-8"), Loader=DecimalSafeLoader)
    return {
        (a["indicator"], str(a["region"])): (Decimal(a["value"]), a["qualifier"])
        for a in document["answers"]
    }


def run(text_path: Path, year: int, knowledge: Knowledge) -> Extraction:
    text = text_path.read_text(encoding="utf-8")
    return extract(text, Options(year=year, source_code=f"eval-{year}"), knowledge)


def main() -> None:
    knowledge = knowledge_from_file(SEED)
    print("2023 review, learning from the 2023 seed:")
    print(score(run(SEED_TEXT, 2023, knowledge).draft, seed_key()))
    print("next-year fixture (invented), learning from the 2023 seed:")
    print(score(run(NEXT_YEAR_TEXT, 2024, knowledge).draft, fixture_key()))


if __name__ == "__main__":
    main()
