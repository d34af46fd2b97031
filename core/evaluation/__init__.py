"""Memory-aware batch evaluation: planner, worker processes, guard, results."""
