"""Maps the owner-fixed top-level folders into the one import package ``apigen_mt``.

``domains/`` becomes ``apigen_mt.domains``, ``tools/`` ``apigen_mt.tools`` and so on, so
nothing generic (``tools``, ``agents``) lands at the top of site-packages. The mapping works
for wheels and editable installs alike. Metadata lives in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
FOLDERS = {
    "apigen_mt": "apigen_mt",
    "apigen_mt.domains": "domains",
    "apigen_mt.tools": "tools",
    "apigen_mt.agents": "agents",
    "apigen_mt.prompts": "prompts",
    "apigen_mt.graphs": "graphs",
}
DATA = ["*.json", "*.jsonl", "*.md", "*.txt", "*.toml", "*.graphml"]


def _packages() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for package, folder in FOLDERS.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder)
            name = ".".join([package, *rel.parts]) if rel.parts else package
            packages.append(name)
            package_dir[name] = str(init.parent.relative_to(ROOT))
    return packages, package_dir


packages, package_dir = _packages()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data={name: DATA for name in packages},
)
