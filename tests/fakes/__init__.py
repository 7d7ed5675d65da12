"""Stateful fakes of provider APIs and a bridge that serves them over real HTTP."""
