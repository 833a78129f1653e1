"""What `pip install` gives: the library on torch alone, the workflow's pins in step
between pyproject.toml and environment.yml, and a licence that matches."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
CORE_MODULES = ["__init__.py", "stats.py", "sigreg.py", "loss.py"]
STANDARD_LIBRARY = set(sys.stdlib_module_names)


def imported_top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_library_depends_on_torch_only():
    assert PYPROJECT["project"]["dependencies"] == ["torch>=2.1"]
    for name in CORE_MODULES:
        third_party = imported_top_level_names(REPO / "src" / "lejepa" / name) - STANDARD_LIBRARY
        assert third_party <= {"torch", "lejepa"}, (name, third_party)


def test_importing_the_loss_loads_no_workflow_module():
    code = (
        "import sys, torch, lejepa\n"
        "loss = lejepa.LeJEPALoss(lam=0.05, sigreg=lejepa.SIGReg(num_slices=8))\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lejepa', 'numpy', 'pandas', 'scipy', 'timm', 'torchvision', 'snakemake', 'matplotlib', 'yaml'))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert {m for m in loaded if m.startswith("lejepa")} == {"lejepa", "lejepa.stats", "lejepa.sigreg", "lejepa.loss"}
    assert not {m.split(".")[0] for m in loaded} & {"pandas", "scipy", "timm", "torchvision", "snakemake", "matplotlib"}


def requirement_pins(requirements) -> dict[str, str]:
    """{name: specifier} of requirement strings such as 'torch==2.14.1'."""
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*([<>=!~].*)?", requirement.strip())
        if match:
            pins[match.group(1).lower()] = (match.group(2) or "").replace(" ", "")
    return pins


def test_environment_yml_has_the_workflow_pins():
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    listed = [d for d in environment["dependencies"] if isinstance(d, str)]
    listed += next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    conda_pins = requirement_pins(re.sub(r"^(python)=", r"\1==", d) for d in listed)
    assert requirement_pins(PYPROJECT["project"]["optional-dependencies"]["workflow"]).items() <= conda_pins.items()


def test_every_declared_dependency_is_imported_somewhere():
    """seaborn was declared and never used: a dependency must earn its place."""
    imported = set()
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "workflow").rglob("*.py"), *(REPO / "bench").rglob("*.py")]:
        imported |= imported_top_level_names(path)
    import_names = {"pyyaml": "yaml", "snakemake-executor-plugin-slurm": None, "snakemake": None}
    for name in requirement_pins(PYPROJECT["project"]["optional-dependencies"]["workflow"]):
        module = import_names.get(name, name)
        assert module is None or module in imported, f"{name} is a dependency nothing imports"


def test_licence_file_matches_pyproject():
    assert PYPROJECT["project"]["license"] == {"text": "MIT"}
    assert (REPO / "LICENSE").read_text().splitlines()[0] == "MIT License"


ENVS = REPO / "workflow" / "envs"


def conda_pins(environment: Path) -> dict[str, str]:
    """{package: specifier} of a conda environment file, conda and pip sections together."""
    dependencies = yaml.safe_load(environment.read_text())["dependencies"]
    listed = [d for d in dependencies if isinstance(d, str)]
    listed += [p for d in dependencies if isinstance(d, dict) for p in d.get("pip", []) if not p.startswith("-")]
    return requirement_pins(re.sub(r"^(python)=", r"\1==", d) for d in listed)


def test_rule_environments_pin_what_the_workflow_extra_pins():
    workflow_pins = requirement_pins(PYPROJECT["project"]["optional-dependencies"]["workflow"])
    environments = sorted(ENVS.glob("*.yaml"))
    assert environments
    for environment in environments:
        pins = conda_pins(environment)
        assert pins.pop("python") == "==3.11" and pins.pop("pip") == ""
        assert pins.items() <= workflow_pins.items(), environment.name  # same packages, same pins


def test_every_rule_names_an_environment_that_exists():
    for rule_file in [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]:
        for environment in re.findall(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", rule_file.read_text(), flags=re.M):
            assert (rule_file.parent / environment).resolve().is_file(), (rule_file.name, environment)


def rule_scripts_and_environments():
    """(script path, environment path) of every rule that has both."""
    pairs = []
    for rule_file in (REPO / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"^(?=(?:rule|checkpoint)\b|    rule\b)", rule_file.read_text(), flags=re.M):
            environment = re.search(r"conda:\s*\n\s+\"([^\"]+)\"", block)
            script = re.search(r"script:\s*\n\s+\"([^\"]+)\"", block)
            if environment and script:
                pairs.append(((rule_file.parent / script[1]).resolve(), (rule_file.parent / environment[1]).resolve()))
    return pairs


def test_each_rule_environment_holds_what_its_scripts_import():
    """The workflow dependencies that a rule's script loads (through lejepa) are in its environment."""
    workflow_dependencies = {
        "numpy": "numpy", "scipy": "scipy", "pandas": "pandas", "matplotlib": "matplotlib", "yaml": "pyyaml",
        "tqdm": "tqdm", "h5py": "h5py", "torch": "torch", "torchvision": "torchvision", "timm": "timm",
    }  # fmt: skip
    scripts_of = {}
    for script, environment in rule_scripts_and_environments():
        scripts_of.setdefault(environment, set()).add(script)
    assert sum(map(len, scripts_of.values())) >= 8
    for environment, scripts in scripts_of.items():
        modules = set()
        for script in scripts:
            tree = ast.parse(script.read_text())
            modules |= imported_top_level_names(script) - STANDARD_LIBRARY - {"lejepa"}
            modules |= {node.module for node in ast.walk(tree)
                        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lejepa.")}  # fmt: skip
        code = (
            "import importlib, sys\n"
            f"for name in {sorted(modules)!r}:\n    importlib.import_module(name)\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
        )
        loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        needed = {workflow_dependencies[m] for m in loaded if m in workflow_dependencies}
        pins = conda_pins(environment) if environment.parent == ENVS else requirement_pins(
            PYPROJECT["project"]["optional-dependencies"]["workflow"])  # fmt: skip
        assert needed <= set(pins), (environment.name, sorted(needed - set(pins)))
