"""Reserved for the functions component (see DESIGN.md); nothing here yet."""
