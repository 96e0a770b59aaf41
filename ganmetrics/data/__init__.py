"""Built-in image data: procedurally rendered, deterministic sets that need no download."""
