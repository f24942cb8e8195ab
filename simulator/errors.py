"""The simulator's own exceptions: every message names the bad input and what to do about it."""


class SimulatorError(Exception):
    """Base class for every error the simulator raises on purpose."""


class ScenarioError(SimulatorError):
    """A scenario file (or a generation option) is invalid."""


class FaultSpecError(SimulatorError):
    """A fault specification string could not be parsed."""
