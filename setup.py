"""Pure-Python install of strands_mesh_ros (pip), for machines with or without ROS.

On a ROS machine the package is built by colcon through CMakeLists.txt (build_type ament_cmake);
this file is what ``pip install -e .`` (and scripts/bootstrap.sh) use. Without ROS the mesh,
simulation and CLI work, and the ROS features report a clear error when used.
"""

from setuptools import find_packages, setup

PACKAGE = "strands_mesh_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="ROS 2 robots and simulated robots on the strands mesh (Zenoh)",
    license="Apache-2.0",
    maintainer="strands_mesh_ros maintainers",
    maintainer_email="maintainers@strands-mesh-ros.dev",
    python_requires=">=3.10",
    # package_dir {"": "."} (the default, spelt out) makes setuptools' editable install a plain
    # .pth of the repository root instead of an import-hook finder, so `pip install -e .` behaves
    # the same with or without `--config-settings editable_mode=compat`; the generated ROS
    # interfaces (strands_mesh_ros.msg/.srv in site-packages) join through pkgutil.extend_path.
    package_dir={"": "."},
    packages=find_packages(include=[PACKAGE, PACKAGE + ".*"]),
    package_data={PACKAGE: ["models/*.xml", "models/*.urdf", "config/*",
                           # the fleet view's page and its vendored three.js / urdf-loader (+ LICENSE files)
                           "view_static/*", "view_static/vendor/*/LICENSE", "view_static/vendor/**/*.js"]},
    include_package_data=False,
    zip_safe=False,
    install_requires=[
        "eclipse-zenoh==1.10.2",
        "pydantic>=2.6",
        "jsonschema>=4",
        "numpy",
        "pyyaml",
        "typer>=0.12",
        "rich>=13",
        "mujoco>=3.2",
        "cryptography>=42",  # Ed25519 resume assertions (strands-robots 0.5.3 interop)
        "rosbags>=0.11.9",  # `strands-mesh record`: rosbag2 v9 bags with MCAP storage, pure Python
    ],
    extras_require={
        # pybullet and dm_control only ship third-party robot models (pybullet_data's Kuka iiwa,
        # Unitree A1, Franka Panda URDFs; dm_control's Jaco MJCF) that the MuJoCo tests load.
        # pytest < 8.4: launch_testing 3.7.1 / launch_pytest (ROS 2 launch, installed by
        # scripts/bootstrap.sh from ../shared/vendor/ros2_launch) break on newer pytest (ros2/launch#979).
        "test": ["pytest>=7.4,<8.4", "pytest-timeout>=2.1", "hypothesis", "cryptography", "pybullet", "dm_control", "ruff", "json5", "pillow",
                 # independent readers of the bags `strands-mesh record` writes (test_recording.py)
                 "mcap", "mcap-ros2-support"],
    },
    entry_points={
        "console_scripts": [
            "strands-mesh = strands_mesh_ros.cli:main",
            "robot_node = strands_mesh_ros.ros.entry:robot_node",
            "bridge_node = strands_mesh_ros.ros.entry:bridge_node",
            "fleet_host = strands_mesh_ros.ros.entry:fleet_host",
        ],
    },
)
