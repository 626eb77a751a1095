"""Documents for people outside the dashboard: the offline quality report (HTML/PDF)."""
