"""Optional extras: which `pip install 'racer[...]'` brings a missing module, said in one sentence."""
from __future__ import annotations

import importlib.util

# top-level module -> the extra that installs it (setup.py's extras_require)
EXTRAS = {
    "torch": "train", "stable_baselines3": "train", "tensorboard": "train",
    "openvino": "car", "rclpy": "car", "rcl_interfaces": "car", "std_msgs": "car", "sensor_msgs": "car",
    "geometry_msgs": "car",
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """What to install for a missing optional module; None when `exc` is about another module."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return f"this command needs {top}, which is not installed: pip install 'racer[{extra}]'"


def require(*modules: str) -> None:
    """Raise ModuleNotFoundError (which the CLI turns into `missing_extra`'s sentence) for the first
    of `modules` that is not installed: for modules that libraries import late, e.g. tensorboard."""
    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
