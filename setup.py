"""racer: an open, local DeepRacer. Installs with pip, and builds as an ament_python package."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "racer"
NODES = ["camera_node", "lidar_node", "inference_node", "navigation_node", "control_node", "sim_bridge_node"]
EXAMPLES = [f for f in glob("racer/reward_functions/*.py") if not f.endswith("__init__.py")]
TRAIN = ["torch==2.13.0", "stable-baselines3>=2.3", "tensorboard"]
CAR = ["openvino>=2024.0", "ros-rclpy", "ros-std-msgs", "ros-sensor-msgs", "ros-geometry-msgs",
       "ros-rmw-fastrtps-cpp"]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="An open, local replacement for the AWS DeepRacer experience",
    packages=find_packages(include=["sim", "sim.*", "racer", "racer.*", "car", "car.*"]),
    # found through the packages (importlib.resources): the tracks, the launch files; the example
    # reward functions are the modules of racer.reward_functions
    package_data={"sim": ["tracks/*.npy"], "car": ["launch/*.launch.yaml"]},
    data_files=[  # ament's share dir, for `ros2 launch racer car.launch.yaml` where ROS 2 is installed
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("car/launch/*.launch.yaml")),
        (f"share/{PACKAGE}/reward_functions", EXAMPLES),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24", "scipy>=1.10", "pybullet>=3.2.5", "gymnasium>=1.0", "pillow>=9",
        "click>=8.1", "rich>=13", "pyyaml>=6", "matplotlib>=3.7", "imageio>=2.30", "pettingzoo>=1.24",
        "numba>=0.60",  # the simulator's compiled kernels (sim.kernels)
    ],
    extras_require={
        "train": TRAIN,
        "car": CAR,
        "test": ["pytest>=7", "grimp>=3.4", "ruff>=0.6"] + TRAIN + CAR,
    },
    # `ros2 run racer <node>` (ament) and plain console scripts; `racer car up` runs them as modules.
    entry_points={"console_scripts": ["racer = racer.cli:main"] + [f"{n} = car.nodes.{n}:main" for n in NODES]},
    zip_safe=False,
)
