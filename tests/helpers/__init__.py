"""What the tests share: model builders, data, known games, paths. No tests here.

Most modules import their optional packages (torch, keras, ...) inside the functions that need them, so
importing them needs only deepshap's base dependencies. A module named for one framework's tests
(``torch_deep``) imports that framework at the top: import it after ``pytest.importorskip``.
"""
