"""deepshap must import and work for numpy users on a machine without torch, tensorflow or keras."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_FRAMEWORKS = textwrap.dedent(
    """
    import sys

    BLOCKED = {"torch", "tensorflow", "keras", "tf_keras", "jax"}

    class BlockFrameworks:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockFrameworks())
    import matplotlib
    matplotlib.use("Agg")
    import numpy as np
    """
)

CHECK_NONE_LOADED = textwrap.dedent(
    """
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    assert not loaded, f"framework modules were imported: {loaded}"
    print("OK")
    """
)


def run_blocked(body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh interpreter where importing any deep-learning framework raises."""
    script = BLOCK_FRAMEWORKS + textwrap.dedent(body) + CHECK_NONE_LOADED
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stderr[-3000:]


def test_the_blocker_really_blocks() -> None:
    result = run_blocked("import torch\n")
    assert result.returncode != 0 and "torch is blocked" in result.stderr


def test_import_and_use_without_frameworks() -> None:
    result = run_blocked(
        """
        import deepshap
        import deepshap as shap

        explanation = shap.Explanation(np.arange(6.0).reshape(2, 3))
        assert explanation.shape == (2, 3)
        figure = shap.image_plot([np.ones((2, 8, 8, 3))], np.zeros((2, 8, 8, 3)), show=False)
        assert figure is not None
        masker = shap.maskers.Image("blur(4,4)", (8, 8, 3))
        assert masker is not None
        images, names = shap.datasets.sample_images(["coffee"], size=16)
        assert images.shape == (1, 16, 16, 3) and names == ["coffee"]
        """
    )
    assert_ok(result)


def test_explainer_classes_resolve_without_frameworks() -> None:
    result = run_blocked(
        """
        import deepshap
        for name in ("GradientExplainer", "DeepExplainer", "Explainer", "PartitionExplainer"):
            assert callable(getattr(deepshap, name)), name
        """
    )
    assert_ok(result)


def test_jobs_and_cli_import_without_their_packages() -> None:
    """``deepshap --help`` and ``import deepshap.jobs`` need neither the frameworks nor the jobs extra."""
    result = run_blocked(
        """
        BLOCKED |= {"zarr", "pyarrow", "ray"}  # not PIL: matplotlib, a requirement, imports it
        import deepshap.jobs
        from deepshap.cli import build_parser

        parser = build_parser()
        command = ["explain", "--model", "m:f", "--data", "d", "--explainer", "deep", "--out", "o"]
        args = parser.parse_args(command)
        assert args.command == "explain" and args.batch_size == 32
        assert callable(deepshap.jobs.explain_dataset)
        loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {"zarr", "pyarrow", "ray"})
        assert not loaded, loaded
        """
    )
    assert_ok(result)


def test_current_dialect_and_explainers_namespace_resolve_without_frameworks() -> None:
    result = run_blocked(
        """
        import deepshap.current as shap
        import deepshap.explainers

        for name in ("GradientExplainer", "DeepExplainer", "Explainer", "PartitionExplainer"):
            assert callable(getattr(shap, name)), name
        for name in ("Deep", "Gradient", "Partition", "PartitionExplainer"):
            assert callable(getattr(shap.explainers, name)) and callable(getattr(deepshap.explainers, name))
        """
    )
    assert_ok(result)
