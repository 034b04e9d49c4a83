"""deepshap's test suite.

A package (every folder has an ``__init__.py``) so that test files may share a name in different folders
and import the shared helpers the same way everywhere: ``from tests.helpers import torch_models``.
"""
