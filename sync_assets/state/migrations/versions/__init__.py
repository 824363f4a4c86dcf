"""The revisions, one file each; a revision's id is the schema version it makes, zero-padded (``0002``)."""
