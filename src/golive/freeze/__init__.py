"""Write freeze of the old application (maintenance mode), as steps with an exact undo."""
