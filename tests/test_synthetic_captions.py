"""Every number in the synthetic captions, in table 6's caption and in the README lines
about them comes from a committed CSV, recomputed here from that file.

For each figure, ``summarise_figN(data)`` (next to its experiment) formats the numbers
the text quotes, from the committed figures/data/figN.csv alone; table 6's come from
``lejepa.timing.summarise_table6`` on tables/table6*.csv. Two checks per text:

- the quoted summary values appear in it, verbatim;
- every number in its "What our run shows" part (for the README: its lines about the
  figure) is a summary value, a setting of config/config.yaml, or one of a few words
  of the text that are not measurements (listed per figure below).

So a rebuilt CSV that changes a number, or a caption edited by hand, fails here.
"""

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lejepa.synthetic.illustration import summarise_fig5
from lejepa.synthetic.optimise import summarise_fig6, summarise_fig7
from lejepa.synthetic.quadrature import summarise_fig20
from lejepa.synthetic.sphere import summarise_fig4
from lejepa.timing import summarise_table6

REPO = Path(__file__).resolve().parents[1]

SUMMARISE = {
    "fig4": summarise_fig4,
    "fig5": summarise_fig5,
    "fig6": summarise_fig6,
    "fig16": summarise_fig6,
    "fig7": summarise_fig7,
    "fig20": summarise_fig20,
}

# Summary values each caption must quote.
QUOTED = {
    "fig4": ["alpha=10 mean degree", "alpha=1 mean degree"],
    "fig5": ["epps_pulley arms", "epps_pulley least", "vcreg max", "vcreg max/min"],
    "fig6": [
        "arm distance before", "arm distance gaussian", "arm distance vcreg", "arm distance vcreg_gd",
        "arm distance epps_pulley", "arm distance bhep", "arm distance henze_zirkler",
        "initial gradient henze_zirkler",
    ],
    "fig16": [
        "arm distance vcreg", "arm distance vcreg_gd", "arm distance epps_pulley", "arm distance bhep",
        "arm distance henze_zirkler",
    ],
    "fig7": [
        "null mean", "N=128 D=512 resampled 16", "N=128 D=512 fixed largest", "N=512 D=128 resampled 16",
        "N=512 D=128 fixed largest", "N=512 D=128 fixed M matching resampled 16",
        "N=512 D=128 largest fixed above resampled 16", "N=512 D=128 resampled best",
    ],
    "fig20": [
        "T=3 gaussian median 17", "T=3 gaussian slope 9-49", "T=3 draws above 1e-3 at 17",
        "T=5 gaussian median 17", "T=5 gaussian slope 9-49", "T=5 heavy_tail median 17",
        "algorithm1 gaussian median", "algorithm1 worst median", "T=3 distributions above 1e-3 at 17",
        "T=5 distributions above 1e-3 at 17",
    ],
}  # fmt: skip

# Numbers in the text that are not measurements: coordinates, "N(0, 1)", ordinal words...
NOT_MEASUREMENTS = {
    "fig4": {"1", "10"},
    "fig5": {"0", "1", "2", "135"},  # the X's arms lie at 45 and 135 degrees
    "fig6": {"0", "1", "2", "3", "4", "5", "300"},
    "fig16": {"0", "1", "2", "3", "4", "6"},
    "fig7": {"0", "1", "16"},
    "fig20": {"0", "1", "2", "3", "5", "9", "17", "1e-3"},
}

NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?")


def numbers_in(text: str) -> set[str]:
    return set(NUMBER.findall(text))


def normalised(text: str) -> str:
    return " ".join(text.split())


def settings_numbers(figure: str) -> set[str]:
    """Every number in the figure's block of config/config.yaml, as written and as %g."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["synthetic"].get(figure, {})
    found = set()

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found.update({str(value), f"{value:g}"})

    walk(config)
    return found


def findings(caption: str) -> str:
    assert "What our run shows:" in caption
    return normalised(caption.split("What our run shows:", 1)[1])


def summary_of(figure: str) -> dict:
    return SUMMARISE[figure](pd.read_csv(REPO / "figures" / "data" / f"{figure}.csv"))


@pytest.mark.parametrize("figure", sorted(SUMMARISE))
def test_caption_quotes_the_numbers_of_its_csv(figure):
    caption = normalised((REPO / "workflow" / "report" / f"{figure}.rst").read_text())
    summary = summary_of(figure)
    missing = {key: summary[key] for key in QUOTED[figure] if summary[key] not in caption}
    assert not missing, f"{figure}.rst does not quote {missing} (recomputed from figures/data/{figure}.csv)"


@pytest.mark.parametrize("figure", sorted(SUMMARISE))
def test_every_number_of_a_caption_is_traced(figure):
    text = findings((REPO / "workflow" / "report" / f"{figure}.rst").read_text())
    allowed = set().union(*(numbers_in(value) for value in summary_of(figure).values()))
    allowed |= settings_numbers(figure) | NOT_MEASUREMENTS[figure]
    untraced = numbers_in(text) - allowed
    assert not untraced, f"{figure}.rst quotes {sorted(untraced)}, which figures/data/{figure}.csv does not give"


def readme_lines_about(label: str) -> str:
    """The README bullet(s) under 'What the synthetic figures show' that start with ``label``."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### What the synthetic figures show", 1)[1].split("\n### ", 1)[0]
    bullets = re.split(r"\n\s*- ", section)
    chosen = [bullet for bullet in bullets if bullet.lstrip().startswith(label)]
    assert chosen, f"README has no line about {label}"
    return normalised(" ".join(chosen))


@pytest.mark.parametrize(
    "label, figures",
    [("fig 4", ["fig4"]), ("fig 5", ["fig5"]), ("fig 6 / fig 16", ["fig6", "fig16"]), ("fig 7", ["fig7"]),
     ("fig 20", ["fig20"])],
)  # fmt: skip
def test_every_number_of_the_readme_lines_is_traced(label, figures):
    text = readme_lines_about(label)
    allowed = set()
    for figure in figures:
        allowed |= set().union(*(numbers_in(value) for value in summary_of(figure).values()))
        allowed |= settings_numbers(figure) | NOT_MEASUREMENTS[figure]
    allowed |= numbers_in(label)
    untraced = numbers_in(text) - allowed
    assert not untraced, f"README's line on {label} quotes {sorted(untraced)}, not in {figures}' data"


# ---------------------------------------------------------------- table 6

TABLE6_QUOTED = {
    "table6.csv": ["torch", "commit", "small rows ratio", "N=M=8192 ms", "baseline speedup"],
    "table6-cuda.csv": [
        "torch", "commit", "small rows ms", "small rows ratio", "256 knots ms", "N=32768 ms", "N=32768 ratio",
        "N=M=8192 ms", "N=M=8192 ratio",
    ],
}  # fmt: skip


def table6_summaries() -> dict:
    return {name: summarise_table6(pd.read_csv(REPO / "tables" / name)) for name in TABLE6_QUOTED}


def test_table6_caption_quotes_both_tables():
    caption = normalised((REPO / "workflow" / "report" / "table6.rst").read_text())
    for name, keys in TABLE6_QUOTED.items():
        summary = table6_summaries()[name]
        missing = {key: summary[key] for key in keys if summary[key] not in caption}
        assert not missing, f"table6.rst does not quote {missing} from tables/{name}"


def test_every_number_about_table6_is_traced():
    allowed = set()
    for summary in table6_summaries().values():
        allowed |= set().union(*(numbers_in(value) for value in summary.values()))
    allowed |= {"0", "1", "2", "3", "5", "16", "64", "8192", "32768", "512", "256"}  # grid sizes, [-5, 5], [0, 3]
    caption = findings((REPO / "workflow" / "report" / "table6.rst").read_text())
    assert not numbers_in(caption) - allowed, sorted(numbers_in(caption) - allowed)
    readme = (REPO / "README.md").read_text()
    section = normalised(readme.split("### Table 6 in short", 1)[1].split("\n#", 1)[0])  # to the next heading
    assert not numbers_in(section) - allowed, sorted(numbers_in(section) - allowed)
