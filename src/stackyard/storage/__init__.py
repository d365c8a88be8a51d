"""Reserved for the storage component (see DESIGN.md); nothing here yet."""
