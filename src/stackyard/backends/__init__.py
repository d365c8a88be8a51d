"""Reserved for the backends component (see DESIGN.md); nothing here yet."""
