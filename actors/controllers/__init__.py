"""The controller manager: every controller in one actor, each its own keyed reconcile loop."""
