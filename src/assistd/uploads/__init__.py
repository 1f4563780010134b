"""/v1/uploads: large files in parts (create, add part, complete, cancel)."""
