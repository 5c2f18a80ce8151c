"""Print pyproject.toml's direct dependencies, one per line, for `make lock`.

Usage: python bin/direct_deps.py [EXTRA]
"""

import sys
import tomllib
from pathlib import Path


def main() -> None:
    """Print [project.dependencies], or one [project.optional-dependencies] group."""
    project = tomllib.loads(
        Path(__file__).resolve().parent.parent.joinpath("pyproject.toml").read_text()
    )["project"]
    extra = sys.argv[1] if len(sys.argv) > 1 else None
    deps = project["optional-dependencies"][extra] if extra else project["dependencies"]
    print("\n".join(deps))


if __name__ == "__main__":
    main()
