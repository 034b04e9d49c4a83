"""``deepshap demo``: train a small CNN, explain it with every explainer, write an HTML gallery."""

from deepshap.demo.runner import DemoSectionError, run_demo
from deepshap.demo.sections import SECTIONS, DemoSettings, SectionResult

__all__ = ["SECTIONS", "DemoSectionError", "DemoSettings", "SectionResult", "run_demo"]
