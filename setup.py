"""Packaging for lth_tf: `pip install -e .` installs the package and the `lth` command."""
from setuptools import find_packages, setup

setup(
    name="lth_tf",
    version="0.1.0",
    description="Find, study, transfer and ship lottery tickets with Keras and TensorFlow.",
    packages=find_packages(include=["lth_tf", "lth_tf.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow==2.21.0",
        "tf-keras==2.21.0",
        # Keras 3 models (`import keras`): lth_tf.mechanism.keras3 reads names of this version.
        "keras==3.15.1",
        "tensorflow-model-optimization==0.8.1",
        "tensorflow-datasets==4.9.10",
        "importlib_resources>=6",  # TFDS needs it to download and prepare datasets
        "keras-tuner[bayesian]==1.4.8",  # bayesian: scipy and scikit-learn
        "absl-py>=1.4,<3",
        "ai-edge-litert>=2.0",
        "matplotlib>=3.8",
        "tensorboard>=2.20",
        "numpy>=1.26",
        "pillow>=10",
    ],
    # bench: the optional PyTorch contender of benchmarks/speed.py (a CPU build is enough).
    # ray: the `--executor=ray` of lth find (lth_tf.executors.ray_cluster).
    # jax: Keras 3 models on the JAX backend (KERAS_BACKEND=jax; lth_tf.training.jax_trainer), on
    # CPU; for a GPU install JAX's CUDA build of the same version instead.
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3.5"], "bench": ["torch>=2.0"],
                    "ray": ["ray>=2.40"], "jax": ["jax==0.10.2", "jaxlib==0.10.2"]},
    entry_points={"console_scripts": ["lth=lth_tf.cli:main"]},
)
