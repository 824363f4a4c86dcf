"""Stateful fakes of the vendors' APIs (Starlette apps) and the bookkeeping they share (``common``)."""
