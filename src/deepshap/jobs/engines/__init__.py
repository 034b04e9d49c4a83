"""Engines that run a job: :class:`~deepshap.jobs.engines.local.LocalEngine` in-process, Ray to scale."""
