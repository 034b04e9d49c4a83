"""The workings of :class:`deepshap.explanation.Explanation`, one job per module.

``layout``: the fields and which axes of ``values`` each follows; ``chains``: operations recorded in
``op_history`` and the lazy selectors built on the class; ``indexing``: numpy-like and by-name
indexing; ``reductions``: mean, sum, percentile ... over axes, argsort and flip; ``arithmetic``: scaling,
adding and joining explanations.
"""
