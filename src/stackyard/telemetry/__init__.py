"""Reserved for the telemetry component (see DESIGN.md); nothing here yet."""
