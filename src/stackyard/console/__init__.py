"""Reserved for the console component (see DESIGN.md); nothing here yet."""
