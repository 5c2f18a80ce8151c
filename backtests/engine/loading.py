"""Loading users' strategy modules: named in a setting, or installed packages' entry points.

Importing a module runs its `@strategy` decorators, which register its strategies. Any
problem (a module that does not import, an id defined twice, a bad parameter schema) is
a StrategyLoadError naming the module, raised when the process starts, never at a run.
"""

import importlib
import importlib.metadata

from backtests.engine import strategies

ENTRY_POINT_GROUP = "backtest_playback.strategies"


class StrategyLoadError(Exception):
    """A strategy module that cannot be used, and why."""

    def __init__(self, module: str, problem: str) -> None:
        super().__init__(f"strategy module {module}: {problem}")
        self.module, self.problem = module, problem


def load(modules: list[str]) -> list[str]:
    """Import the named modules and every installed entry point of the group; return the
    modules loaded. A module already imported is not imported again."""
    named = [(module, None) for module in modules]
    installed = [
        (entry.value, entry) for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    ]
    loaded = []
    for module, entry in named + installed:
        try:
            entry.load() if entry is not None else importlib.import_module(module)
        except strategies.DuplicateStrategy as exc:
            raise StrategyLoadError(module, str(exc)) from None
        except ImportError as exc:
            raise StrategyLoadError(module, f"cannot be imported: {exc}") from None
        except Exception as exc:  # the module's own code failed as it ran
            raise StrategyLoadError(module, f"{type(exc).__name__}: {exc}") from None
        loaded.append(module)
    return loaded
