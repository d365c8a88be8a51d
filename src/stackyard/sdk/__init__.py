"""Reserved for the sdk component (see DESIGN.md); nothing here yet."""
