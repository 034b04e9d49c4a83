"""What the tests share: model builders, data, known games, paths. No tests here.

Each module imports its optional packages (torch, keras, ...) inside the functions that need them, so
importing any of them needs only deepshap's base dependencies.
"""
