"""The final data sync from the old (Flask) database into the new (Django) one."""
